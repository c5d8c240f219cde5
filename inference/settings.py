"""The inference layer's sections of the configuration file: ``training``, ``promotion``, ``monitoring``.

They live in the same YAML file as the core's sections and take the same environment
overrides (``FEATURELAKE_TRAINING_SEED``...); the core keeps them for this module, which
defines and checks them (:class:`featurestore.core.config.Section`)::

    training:
      model_name: my_model          # no default: the jobs ask for it when they need it
      labels_path: raw/labels.parquet
      label: target                 # no default either
      lookups:
        - {table: customer_profile, timestamp_lookup_key: label_time}
    promotion:
      thresholds: {roc_auc: ">= 0.6"}
    monitoring:
      thresholds: {auc: ">= 0.7", prediction_psi: "<= 0.2"}

Read a section with ``TRAINING.of(config)``. This module imports nothing heavy: the jobs load
every section before any Spark session starts, so a bad value fails fast.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from featurestore.core.config import Config, Section
from featurestore.core.errors import BadInputError


@dataclass
class LookupSettings:
    """One feature lookup of the training set (see :class:`featurestore.training_set.FeatureLookup`)."""

    table: str = ""
    features: list[str] | None = None
    lookup_keys: list[str] | None = None
    timestamp_lookup_key: str | None = None
    ttl_seconds: int | None = None


@dataclass
class TrainingSettings:
    """What the training job learns from and which estimator it fits (see :mod:`inference.training`)."""

    model_name: str | None = None      # the registered model (see configured_model_name)
    labels_path: str | None = None     # parquet file/folder or Delta table of labels
    label: str | None = None           # the label column (see configured_label)
    lookups: list[LookupSettings] = field(default_factory=list)
    drop_missing: bool = False
    task: str = "classifier"           # classifier | regressor (mlflow.evaluate model type)
    estimator: str = "sklearn.linear_model.LogisticRegression"
    estimator_params: dict[str, str] = field(default_factory=dict)  # values parsed as YAML scalars
    test_fraction: float = 0.25
    seed: int = 42
    description: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    source_url: str | None = None      # notebook or repository link logged as featurelake.source


@dataclass
class PromotionSettings:
    """Gates a candidate model version must pass to be promoted (see :mod:`inference.promotion`)."""

    metric: str = "roc_auc"            # compared with the current Production version
    greater_is_better: bool = True
    min_improvement: float = 0.0
    # metric -> accepted range, for example {roc_auc: ">= 0.6", log_loss: "<= 0.69"}
    thresholds: dict[str, str] = field(default_factory=dict)
    events_table: str = "promotion_events"


@dataclass
class MonitoringSettings:
    """What the monitoring job checks and how it reacts (see :mod:`inference.monitoring.metrics`)."""

    # metric -> accepted range, for example {auc: ">= 0.7", prediction_psi: "<= 0.2"}
    thresholds: dict[str, str] = field(default_factory=dict)
    max_attempts: int = 3
    webhook_url: str | None = None
    predictions_table: str = "predictions"


TRAINING = Section("training", TrainingSettings, paths=("labels_path",))
PROMOTION = Section("promotion", PromotionSettings)
MONITORING = Section("monitoring", MonitoringSettings)
SECTIONS = (TRAINING, PROMOTION, MONITORING)


def configured_model_name(config: Config, given: str | None = None, option: str = "--model-name") -> str:
    """The model a command works on: ``given`` (its ``option``), else ``training.model_name``.

    Example: ``configured_model_name(config, args.model_name)`` -> ``"churn_model"``.

    Raises:
        BadInputError: neither is set (``training.model_name`` has no default).
    """
    return given or _required(TRAINING.of(config).model_name, "training.model_name",
                              f"pass {option} or set it in the configuration")


def configured_label(config: Config) -> str:
    """The label column of the training set: ``training.label``.

    Raises:
        BadInputError: ``training.label is not set`` (it has no default).
    """
    return _required(TRAINING.of(config).label, "training.label",
                     "set it in the configuration to the label column of the labels")


def _required(value: str | None, key: str, hint: str) -> str:
    if not value:
        raise BadInputError(f"{key} is not set: {hint}")
    return value
