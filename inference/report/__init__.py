"""The static HTML report: feature tables, registered models and monitoring, from the workspace."""
