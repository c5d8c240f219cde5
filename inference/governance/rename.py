"""Renaming a registered model, together with the rows of featurelake's tables that name it.

MLflow renames the model with its versions, tags and aliases. featurelake's own tables key their
rows by model name; these are rewritten (one UPDATE commit each) so that ``models activity``,
``models events``, ``models requests``, ``monitor`` and the report find the model's history under
the new name:

* ``promotion_events`` (``promotion.events_table``), ``model_requests``, ``model_activity``;
* ``model_metrics``, ``model_alerts``, ``retrain_attempts``;
* the predictions table ``monitoring.predictions_table`` (``predictions``): the monitoring job
  finds a batch by model name. This rewrites the files holding the model's rows.

Not rewritten: prediction tables written elsewhere with ``predict --output-table``, the MLflow
run tag ``featurelake.model_name`` (the name at training time), and Delta's history (time
travel to an older table version shows the old name).

A rename is refused while a version is in Staging or Production: jobs load those by name
(``models:/NAME/Production``), and would break. The registry is renamed first, then the tables;
if a table update fails, running the same rename again finishes the tables (the registry, which
then has the new name and not the old one, is left as it is).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timezone

from pyspark.sql import SparkSession

from featurestore.core.config import Config
from featurestore.core.errors import BadInputError, ConflictError, NotFoundError
from featurestore.core.identifiers import validate_identifier
from inference import registry
from inference.governance import changes, tables
from inference.governance.changes import Actor
from inference.governance.tables import ActivityEntry
from inference.monitoring.tables import MODEL_ALERTS, MODEL_METRICS, RETRAIN_ATTEMPTS
from inference.settings import MONITORING, PROMOTION
from inference.stages import PROTECTED_STAGES
from inference.tracking import client as mlflow_client
from inference.tracking import mlflow_call

logger = logging.getLogger(__name__)


@dataclass
class RenameResult:
    """What a rename did: whether the registry was renamed now, and the rows rewritten per table."""

    old: str
    new: str
    registry_renamed: bool
    rows_renamed: dict[str, int] = field(default_factory=dict)


def renamed_tables(config: Config) -> list[str]:
    """The warehouse tables whose ``model_name`` column a rename rewrites."""
    return [PROMOTION.of(config).events_table, tables.MODEL_REQUESTS.name, tables.MODEL_ACTIVITY.name,
            MODEL_METRICS.name, MODEL_ALERTS.name, RETRAIN_ATTEMPTS.name, MONITORING.of(config).predictions_table]


def _exists(config: Config, name: str) -> bool:
    try:
        registry.get_registered_model(config, name)
        return True
    except NotFoundError:
        return False


def _refuse_protected_versions(config: Config, name: str) -> None:
    protected = [f"version {v.version} ({v.current_stage})" for v in registry.search_versions(config, name)
                 if v.current_stage in PROTECTED_STAGES]
    if protected:
        raise ConflictError(f"model {name!r} cannot be renamed while {', '.join(protected)} "
                            f"{'is' if len(protected) == 1 else 'are'} in Staging or Production: "
                            "transition them to Archived (or None) first")


def rename_model(spark: SparkSession, config: Config, old: str, new: str, actor: Actor) -> RenameResult:
    """Rename model ``old`` to ``new`` in the registry and in featurelake's tables; record it.

    >>> rename_model(spark, config, "churn_model", "churn_risk", Actor.of(config, "rename"))  # doctest: +SKIP
    RenameResult(old='churn_model', new='churn_risk', registry_renamed=True, rows_renamed={...})

    Raises:
        BadInputError: a name is not an identifier, or both are the same.
        NotFoundError: neither ``old`` nor ``new`` is a registered model.
        ConflictError: a version is in Staging or Production, or ``new`` exists already (and
            ``old`` too).
    """
    validate_identifier(old, "model name")
    validate_identifier(new, "model name")
    if old == new:
        raise BadInputError(f"model {old!r} cannot be renamed to itself")
    for table in renamed_tables(config):
        validate_identifier(table, "table name")
    if _exists(config, old):
        _refuse_protected_versions(config, old)
        client = mlflow_client(config)
        mlflow_call(lambda: client.rename_registered_model(old, new), f"rename of model {old!r} to {new!r}")
        logger.info("registry: model %s renamed to %s", old, new)
        renamed_now = True
    elif _exists(config, new):
        _refuse_protected_versions(config, new)
        logger.info("registry: model %s is already named %s; renaming the rows of featurelake's tables", old, new)
        renamed_now = False
    else:
        raise NotFoundError(f"registered model {old!r} does not exist")
    result = RenameResult(old, new, renamed_now)
    for table in renamed_tables(config):
        rows = tables.rename_model_rows(spark, config, table, old, new)
        if rows is not None:
            result.rows_renamed[table] = rows
    if not renamed_now and not any(result.rows_renamed.values()):
        raise NotFoundError(f"registered model {old!r} does not exist (and no table has rows of it to rename)")
    changes.record(spark, config, [ActivityEntry(
        at=datetime.now(timezone.utc), model_name=new, version=None, kind="renamed", user=actor.user,
        source=actor.source, text=f"renamed from {old}")])
    return result
