"""Connecting to MLflow tracking and the model registry from the project configuration."""

from __future__ import annotations

import json
import logging
import os
from urllib.parse import urlparse

from featurestore.core.config import Config
from featurestore.core.errors import DependencyUnavailableError, NotFoundError
from featurestore.core.secrets import redact_text, redact_uri
from featurestore.training_set import SPEC_ARTIFACT

logger = logging.getLogger(__name__)

# Bounded retries for http(s) tracking servers, so an unreachable server fails within seconds.
HTTP_ENV_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "10",
}


def registry_uri(config: Config) -> str:
    """Return the model registry URI: the configured one, else the tracking URI."""
    return config.mlflow.registry_uri or config.mlflow.tracking_uri


def configure_mlflow(config: Config, check: bool = True) -> None:
    """Point MLflow at the configured tracking and registry stores.

    Args:
        config: the project configuration.
        check: when True, make one cheap call to the tracking store and raise
            :class:`DependencyUnavailableError` if it cannot be reached.
    """
    import mlflow

    uris = {config.mlflow.tracking_uri, registry_uri(config)}
    if any(urlparse(u).scheme in ("http", "https") for u in uris):
        for key, value in HTTP_ENV_DEFAULTS.items():
            os.environ.setdefault(key, value)
    mlflow.set_tracking_uri(config.mlflow.tracking_uri)
    mlflow.set_registry_uri(registry_uri(config))
    if check:
        check_tracking(config)


def check_tracking(config: Config) -> None:
    """Raise :class:`DependencyUnavailableError` unless the tracking store answers."""
    from mlflow.tracking import MlflowClient

    try:
        MlflowClient(config.mlflow.tracking_uri, registry_uri(config)).search_experiments(max_results=1)
    except Exception as exc:  # MLflow raises many types for an unreachable store
        raise DependencyUnavailableError(
            f"MLflow tracking store {redact_uri(config.mlflow.tracking_uri)} cannot be used: {_first_line(exc)}"
        ) from exc


def client(config: Config):
    """Return an :class:`mlflow.tracking.MlflowClient` for the configured stores (checked)."""
    from mlflow.tracking import MlflowClient

    configure_mlflow(config)
    return MlflowClient(config.mlflow.tracking_uri, registry_uri(config))


def ensure_experiment(config: Config) -> str:
    """Return the id of the configured experiment, creating it with the artifact location."""
    import mlflow

    configure_mlflow(config)
    name = config.mlflow.experiment
    try:
        existing = mlflow.get_experiment_by_name(name)
        if existing is not None:
            return existing.experiment_id
        location = config.mlflow.artifact_location
        if location and not urlparse(location).scheme[1:]:  # a plain path (a Windows drive has a 1-letter scheme)
            location = "file://" + os.path.abspath(location)
        return mlflow.create_experiment(name, artifact_location=location or None)
    except Exception as exc:
        raise DependencyUnavailableError(
            f"MLflow experiment {name!r} cannot be created or read at {redact_uri(config.mlflow.tracking_uri)}: "
            f"{_first_line(exc)}"
        ) from exc


def _first_line(exc: BaseException) -> str:
    text = redact_text(str(exc)).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def load_spec(run_id: str, config: Config | None = None) -> dict:
    """Return the training-set spec logged with MLflow run ``run_id`` (``training_set_spec.json``).

    Args:
        run_id: the MLflow run id.
        config: when given, MLflow is pointed at its tracking store first; otherwise the
            current MLflow tracking URI is used.

    Raises:
        NotFoundError: the run or its spec artifact does not exist.
    """
    import mlflow

    if config is not None:
        configure_mlflow(config)
    try:
        text = mlflow.artifacts.load_text(f"runs:/{run_id}/{SPEC_ARTIFACT}")
    except Exception as exc:  # MlflowException, OSError...
        raise NotFoundError(f"no training-set spec for MLflow run {run_id!r}: {str(exc).splitlines()[0]}") from None
    return json.loads(text)
