"""Registry governance on top of MLflow's registry: transition requests and approvals, the activity log,
comments, compare, rename and registry events (in Delta tables beside ``promotion_events``)."""
