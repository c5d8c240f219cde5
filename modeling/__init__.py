"""Model lifecycle: point-in-time training sets, MLflow training runs, registry and promotion."""
