"""Monitoring of production models: metrics per batch, drift, the retraining loop and alerts."""
