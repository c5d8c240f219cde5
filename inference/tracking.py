"""Connecting to MLflow tracking and the model registry from the project configuration: the one
place that builds an MLflow client and turns MLflow's failures into featurelake errors."""

from __future__ import annotations

import json
import logging
import os
from typing import TYPE_CHECKING, Callable, TypeVar
from urllib.parse import urlparse

from featurestore.core.config import Config
from featurestore.core.errors import BadInputError, ConflictError, DependencyUnavailableError, NotFoundError
from featurestore.core.secrets import redact_text, redact_uri
from featurestore.training_set import SPEC_ARTIFACT, TrainingSetSpec

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

logger = logging.getLogger(__name__)

T = TypeVar("T")
# MLflow error codes of a model, version, alias or run that does not exist (NOT_FOUND: a server's 404).
MISSING_CODES = ("RESOURCE_DOES_NOT_EXIST", "NOT_FOUND")

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
    client(config, check=True)


def client(config: Config, check: bool = True) -> MlflowClient:
    """Point MLflow at the configured tracking and registry stores and return a client for them.

    Args:
        config: the project configuration.
        check: make one cheap call first, so that an unreachable store fails here.

    Raises:
        DependencyUnavailableError: ``check`` and the tracking store cannot be used.

    Example: ``mlflow_call(lambda: client(config).get_run(run_id), f"MLflow run {run_id!r}")``.
    """
    from mlflow.tracking import MlflowClient

    configure_mlflow(config, check=False)
    mlflow_client = MlflowClient(config.mlflow.tracking_uri, registry_uri(config))
    if check:
        try:
            mlflow_client.search_experiments(max_results=1)
        except Exception as exc:  # MLflow raises many types for an unreachable store
            raise DependencyUnavailableError(
                f"MLflow tracking store {redact_uri(config.mlflow.tracking_uri)} cannot be used: {_first_line(exc)}"
            ) from exc
    return mlflow_client


def mlflow_call(fn: Callable[[], T], what: str, missing: str | None = None) -> T:
    """Run an MLflow call and turn its failures into featurelake errors that name ``what``.

    A thing that does not exist is a :class:`NotFoundError` (with the message ``missing`` when
    given), a refused parameter a :class:`BadInputError`, a name taken a :class:`ConflictError`,
    anything else :class:`DependencyUnavailableError`.

    Example: ``mlflow_call(lambda: c.get_registered_model(name), f"model {name!r}")``.
    """
    from mlflow.exceptions import MlflowException

    try:
        return fn()
    except MlflowException as exc:
        code = getattr(exc, "error_code", "")
        message = _first_line(exc) if str(exc) else code
        if code in MISSING_CODES:
            raise NotFoundError(missing or f"{what} does not exist ({message})") from None
        if code in ("INVALID_PARAMETER_VALUE", "BAD_REQUEST"):
            raise BadInputError(f"{what}: {message}") from None
        if code == "RESOURCE_ALREADY_EXISTS":
            raise ConflictError(f"{what}: {message}") from None
        raise DependencyUnavailableError(f"MLflow failed on {what}: {message}") from exc


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


def load_spec(run_id: str, config: Config | None = None) -> TrainingSetSpec:
    """Return the training-set spec logged with MLflow run ``run_id`` (``training_set_spec.json``).

    Example: ``load_spec(resolved.run_id, config).entity_keys`` -> ``["customer_id"]``.

    Args:
        run_id: the MLflow run id.
        config: when given, MLflow is pointed at its tracking store first; otherwise the
            current MLflow tracking URI is used.

    Raises:
        NotFoundError: the run or its spec artifact does not exist.
        BadInputError: the artifact is not a training-set spec.
    """
    import mlflow

    if config is not None:
        configure_mlflow(config)
    try:
        text = mlflow.artifacts.load_text(f"runs:/{run_id}/{SPEC_ARTIFACT}")
    except Exception as exc:  # MlflowException, OSError...
        raise NotFoundError(f"no training-set spec for MLflow run {run_id!r}: {str(exc).splitlines()[0]}") from None
    try:
        return TrainingSetSpec.from_dict(json.loads(text))
    except (ValueError, TypeError, AttributeError) as exc:
        raise BadInputError(f"the training-set spec of MLflow run {run_id!r} cannot be read: {exc}") from None
