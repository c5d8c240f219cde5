"""The inference layer's sections of the configuration file: ``training``, ``promotion``, ``monitoring``,
``governance``.

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
    governance:
      user: alice@example.com       # who requests, approves and comments (default: the OS user)
      events:                       # registry events -> the notifier (see inference/governance/events.py)
        - {model: churn_model, events: [transition_requested], webhook_url: https://hooks.example.com/x}

Read a section with ``TRAINING.of(config)``. This module imports nothing heavy: the jobs load
every section before any Spark session starts, so a bad value fails fast.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from featurestore.core.config import Config, Section
from featurestore.core.errors import BadInputError
from featurestore.core.identifiers import validate_identifier


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


REGISTRY_EVENT_TYPES = ("version_created", "transition_requested", "transition_applied", "comment_added")
_USER = re.compile(r"^[^\x00-\x1f\x7f]{1,128}$")


@dataclass
class RegistryEventRule:
    """Where registry events of one model (or of every model, ``*``) go: a webhook, else the log."""

    model: str = "*"
    events: list[str] = field(default_factory=list)   # empty: every event type
    webhook_url: str | None = None                    # none: the events are written to the log

    def __post_init__(self) -> None:
        if self.model != "*":
            validate_identifier(self.model, "governance.events model")
        unknown = sorted(set(self.events) - set(REGISTRY_EVENT_TYPES))
        if unknown:
            raise BadInputError(f"governance.events of model {self.model!r}: unknown event type(s) "
                                f"{', '.join(unknown)}; use {', '.join(REGISTRY_EVENT_TYPES)}")
        if self.webhook_url is not None and not self.webhook_url.startswith(("http://", "https://")):
            raise BadInputError(f"governance.events of model {self.model!r}: webhook_url is not an http(s) URL "
                                f"(it starts with {self.webhook_url[:8]!r})")

    def matches(self, model_name: str, event_type: str) -> bool:
        """True when this rule routes ``event_type`` of ``model_name``."""
        return self.model in ("*", model_name) and (not self.events or event_type in self.events)


@dataclass
class GovernanceSettings:
    """Transition requests, comments and registry events (see :mod:`inference.governance`)."""

    # The name recorded as requester, approver or author (default: the OS user). Attribution, not security.
    user: str | None = None
    events: list[RegistryEventRule] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.user is not None and not _USER.match(self.user):
            raise BadInputError(f"governance.user must be 1-128 printable characters, got {self.user!r}")


TRAINING = Section("training", TrainingSettings, paths=("labels_path",))
PROMOTION = Section("promotion", PromotionSettings)
MONITORING = Section("monitoring", MonitoringSettings)
GOVERNANCE = Section("governance", GovernanceSettings)
SECTIONS = (TRAINING, PROMOTION, MONITORING, GOVERNANCE)


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
