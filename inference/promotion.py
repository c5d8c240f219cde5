"""Promotion with gates: a candidate version moves to Staging or Production only if its metrics
pass the configured thresholds and (for Production) beat the current Production version.

Every decision is appended to the Delta table ``promotion_events`` (under the warehouse):
model_name, candidate_version, incumbent_version, metric, candidate_value, incumbent_value,
decision ('promoted' | 'rejected'), reason, decided_at, stage.
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass, fields
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Mapping

from featurestore.core.config import Config
from featurestore.core.errors import BadInputError, ConflictError
from featurestore.core.identifiers import validate_identifier
from featurestore.delta_tables import retry_on_conflict
from inference import registry
from inference.comparison import Threshold, improvement, parse_threshold
from inference.governance.changes import Actor, recording
from inference.settings import PROMOTION, PromotionSettings
from inference.stages import PROTECTED_STAGES, check_stage
from inference.tracking import client as mlflow_client
from inference.tracking import mlflow_call

if TYPE_CHECKING:
    from pyspark.sql import SparkSession
    from pyspark.sql import types as T

    from featurestore.delta_reader import DeltaReader

logger = logging.getLogger(__name__)

KIND_PROMOTION_EVENTS = "promotion_events"
EVENTS_DESCRIPTION = "Model promotion decisions: candidate, incumbent, gate metric values, decision and reason"


def events_schema() -> T.StructType:
    """The Spark schema of the promotion events table (the fields of :class:`PromotionDecision`)."""
    from pyspark.sql import types as T

    return T.StructType([
        T.StructField("model_name", T.StringType(), False),
        T.StructField("candidate_version", T.LongType(), False),
        T.StructField("incumbent_version", T.LongType(), True),
        T.StructField("metric", T.StringType(), True),
        T.StructField("candidate_value", T.DoubleType(), True),
        T.StructField("incumbent_value", T.DoubleType(), True),
        T.StructField("decision", T.StringType(), False),
        T.StructField("reason", T.StringType(), False),
        T.StructField("decided_at", T.TimestampType(), False),
        T.StructField("stage", T.StringType(), False),
    ])


DEFAULT_ALIASES = {"Production": "champion", "Staging": "challenger"}


@dataclass
class GateCheck:
    """One threshold check on the candidate's metrics."""

    metric: str
    op: str
    threshold: float
    value: float | None
    passed: bool


@dataclass
class PromotionDecision:
    """The outcome of one promotion attempt (also a row of ``promotion_events``)."""

    model_name: str
    candidate_version: int
    incumbent_version: int | None
    metric: str | None
    candidate_value: float | None
    incumbent_value: float | None
    decision: str
    reason: str
    decided_at: datetime
    stage: str

    @property
    def promoted(self) -> bool:
        """True when the candidate was promoted."""
        return self.decision == "promoted"

    def to_dict(self) -> dict[str, Any]:
        """Return plain JSON-ready data."""
        data = asdict(self)
        data["decided_at"] = self.decided_at.isoformat()
        return data


def parse_thresholds(thresholds: Mapping[str, object]) -> list[Threshold]:
    """Parse ``{metric: ">= 0.7"}`` (:func:`inference.comparison.parse_threshold`; a bare number means ``>=``).

    Raises:
        BadInputError: naming the metric whose threshold cannot be read.
    """
    return [parse_threshold(metric, text, "promotion.thresholds", bare_number=">=")
            for metric, text in thresholds.items()]


def check_thresholds(metrics: Mapping[str, float], thresholds: Mapping[str, object]) -> list[GateCheck]:
    """Check ``metrics`` against every threshold; a missing or NaN metric fails its check."""
    checks = []
    for threshold in parse_thresholds(thresholds):
        actual = metrics.get(threshold.metric)
        ok = actual is not None and not math.isnan(actual) and threshold.accepts(actual)
        checks.append(GateCheck(threshold.metric, threshold.op, threshold.bound, actual, ok))
    return checks


def run_metrics(config: Config, run_id: str | None) -> dict[str, float]:
    """Return the metrics logged in MLflow run ``run_id`` (empty when there is no run)."""
    if not run_id:
        return {}
    client = mlflow_client(config)
    run = mlflow_call(lambda: client.get_run(run_id), f"MLflow run {run_id!r}")
    return dict(run.data.metrics)


def _events_table_path(config: Config) -> str:
    return config.table_path(validate_identifier(PROMOTION.of(config).events_table, "promotion events table"))


def ensure_events_table(spark: SparkSession, config: Config) -> str:
    """Create the promotion events Delta table if needed and return its path."""
    from delta.tables import DeltaTable

    path = _events_table_path(config)
    if not DeltaTable.isDeltaTable(spark, path):
        builder = DeltaTable.createIfNotExists(spark).location(path).comment(EVENTS_DESCRIPTION)
        for f in events_schema().fields:
            builder = builder.addColumn(f.name, f.dataType, nullable=f.nullable)
        builder = builder.property("featurelake.kind", KIND_PROMOTION_EVENTS)
        builder = builder.property("featurelake.description", EVENTS_DESCRIPTION)
        builder.execute()
    return path


def record_event(spark: SparkSession, config: Config, decision: PromotionDecision) -> None:
    """Append ``decision`` to the promotion events table (one Delta commit; a racing create of the
    table by another promotion is retried)."""
    row = (decision.model_name, decision.candidate_version, decision.incumbent_version, decision.metric,
           decision.candidate_value, decision.incumbent_value, decision.decision, decision.reason,
           decision.decided_at, decision.stage)

    def append() -> None:
        path = ensure_events_table(spark, config)
        spark.createDataFrame([row], events_schema()).write.format("delta").mode("append").save(path)

    retry_on_conflict(append, f"table {PROMOTION.of(config).events_table!r}", _events_table_path(config))


def read_events(reader: DeltaReader, config: Config, model_name: str | None = None) -> list[PromotionDecision]:
    """Return the promotion events (of ``model_name`` when given), newest first; none before the first.

    >>> [e.decision for e in read_events(reader, config, "churn_model")]
    ['promoted', 'rejected']
    """
    path = _events_table_path(config)
    if not reader.is_delta_table(path):
        return []
    names = [f.name for f in fields(PromotionDecision)]
    events = [PromotionDecision(**{n: row.get(n) for n in names}) for row in reader.rows(path)
              if model_name is None or row.get("model_name") == model_name]
    return sorted(events, key=lambda e: e.decided_at or datetime.min, reverse=True)


def _compare(settings: PromotionSettings, stage: str, cand_value: float, incumbent: Any,
             inc_value: float | None) -> tuple[str | None, str]:
    """Compare the candidate's gate metric with the Production version's.

    Returns (the failure or None, what the comparison found, for the reason). An incumbent
    without the metric (or with NaN) does not block the candidate: the comparison is skipped
    and says so.
    """
    metric = settings.metric
    if stage != "Production":
        return None, f"{stage}: no comparison with Production is made"
    if incumbent is None:
        return None, "no Production version to beat"
    if inc_value is None or math.isnan(inc_value):
        has = "no" if inc_value is None else "a NaN"
        skipped = f"Production version {incumbent.version} has {has} {metric!r}: comparison skipped"
        logger.warning("%s", skipped)
        return None, skipped
    gain = improvement(cand_value, inc_value, settings.greater_is_better)
    if not gain > settings.min_improvement:
        return (f"{metric} = {cand_value:.6g} does not beat Production version {incumbent.version} "
                f"({inc_value:.6g}) by more than {settings.min_improvement:g}"), ""
    return None, f"beats Production version {incumbent.version} on {metric} ({cand_value:.6g} vs {inc_value:.6g})"


def evaluate_gates(config: Config, name: str, candidate: Any, stage: str) -> PromotionDecision:
    """Decide (without changing anything) whether ``candidate`` may move to ``stage``."""
    settings = PROMOTION.of(config)
    metric = settings.metric
    cand_metrics = run_metrics(config, candidate.run_id)
    incumbent = registry.production_version(config, name) if stage == "Production" else None
    if incumbent is not None and str(incumbent.version) == str(candidate.version):
        incumbent = None
    inc_metrics = run_metrics(config, incumbent.run_id) if incumbent is not None else {}
    cand_value = cand_metrics.get(metric)
    inc_value = inc_metrics.get(metric) if incumbent is not None else None
    failures = [f"{c.metric} = {c.value if c.value is not None else 'missing'} fails threshold {c.op} {c.threshold}"
                for c in check_thresholds(cand_metrics, settings.thresholds) if not c.passed]
    against = ""
    if cand_value is None:
        failures.append(f"gate metric {metric!r} was not logged for version {candidate.version}")
    elif math.isnan(cand_value):
        failures.append(f"gate metric {metric!r} of version {candidate.version} is NaN")
    else:
        failure, against = _compare(settings, stage, cand_value, incumbent, inc_value)
        failures += [failure] if failure else []
    if failures:
        decision, reason = "rejected", "; ".join(failures)
    else:
        decision, reason = "promoted", f"thresholds passed; {against}" if settings.thresholds else against
    return PromotionDecision(
        model_name=name, candidate_version=int(candidate.version),
        incumbent_version=int(incumbent.version) if incumbent is not None else None, metric=metric,
        candidate_value=cand_value, incumbent_value=inc_value, decision=decision, reason=reason,
        decided_at=datetime.now(timezone.utc), stage=stage,
    )


def _stages_left(candidate: Any, stage: str, previous: list[Any]) -> dict[str, str]:
    """Return version -> the stage it leaves when ``candidate`` moves to ``stage`` (archiving ``previous``)."""
    left = {str(v.version): stage for v in previous if str(v.version) != str(candidate.version)}
    if candidate.current_stage in DEFAULT_ALIASES and candidate.current_stage != stage:
        left[str(candidate.version)] = candidate.current_stage
    return left


def _drop_stale_aliases(config: Config, name: str, left: Mapping[str, str], keep: str | None) -> None:
    """Remove ``champion`` and ``challenger`` from the versions that just left Production or Staging
    (``left``: version -> stage left), except the alias ``keep`` that was just set."""
    aliases = getattr(registry.get_registered_model(config, name), "aliases", {}) or {}
    for alias in DEFAULT_ALIASES.values():
        version = str(aliases.get(alias))
        if alias != keep and version in left:
            registry.delete_alias(config, name, alias)
            logger.debug("model %s: alias %s removed from version %s (no longer in %s)", name, alias, version,
                         left[version])


def transition(config: Config, name: str, version: str | int, stage: str, archive_existing: bool = True,
               alias: str | None = None) -> Any:
    """Move a version to ``stage`` without gates (``featurelake models transition``, and
    :func:`promote` once its gates passed), pointing ``alias`` (if any) at it.

    ``champion`` and ``challenger`` leave the versions it moves out of Production or Staging
    (``alias`` excepted, set first), so they never stay on an archived version. Returns the
    registry's :class:`inference.registry.VersionInfo` of the moved version.
    """
    candidate = registry.get_version(config, name, version)
    stage = check_stage(stage)
    previous = registry.versions_in_stage(config, name, stage) if archive_existing else []
    moved = registry.transition(config, name, candidate.version, stage, archive_existing=archive_existing)
    if alias:
        registry.set_alias(config, name, alias, candidate.version)
    _drop_stale_aliases(config, name, _stages_left(candidate, stage, previous), keep=alias)
    return moved


def promote(spark: SparkSession, config: Config, name: str, version: str | int, stage: str = "Production", *,
            alias: str | None = "default", archive_existing: bool = True,
            actor: Actor | None = None) -> PromotionDecision:
    """Promote ``name`` version ``version`` to ``stage`` if it passes the gates; record the decision.

    Args:
        spark: the session (for the events table).
        config: the project configuration (``promotion`` section).
        name: registered model name.
        version: candidate version.
        stage: ``Staging`` or ``Production``.
        alias: alias to point at the promoted version; ``"default"`` uses ``champion`` for
            Production and ``challenger`` for Staging, None sets none. Whatever the alias,
            ``champion`` and ``challenger`` are removed from a version this promotion moves out of
            Production or Staging.
        archive_existing: archive the versions previously in ``stage``.
        actor: who promotes, recorded in ``model_activity`` with the stage changes and alias
            moves (default: :func:`inference.governance.changes.current_user`, source ``promote``).

    Returns:
        The decision; when rejected the registry is unchanged.

    Raises:
        NotFoundError: model or version does not exist.
        BadInputError: stage is not Staging or Production, the alias is not an identifier, or a
            threshold is malformed (all checked before the registry is touched).
        ConflictError: the version is already in ``stage``, or is in Production (a demotion is
            ``registry.transition``'s job).
    """
    stage = check_stage(stage)
    if stage not in PROTECTED_STAGES:
        raise BadInputError(f"promotion target must be {' or '.join(PROTECTED_STAGES)}, got {stage!r}")
    if alias not in (None, "default"):
        validate_identifier(alias, f"model {name!r} alias")  # before any registry write
    parse_thresholds(PROMOTION.of(config).thresholds)
    candidate = registry.get_version(config, name, version)
    if candidate.current_stage == stage:
        raise ConflictError(f"model {name!r} version {candidate.version} is already in {stage}")
    if candidate.current_stage == "Production":
        raise ConflictError(f"model {name!r} version {candidate.version} is in Production: promote does not "
                            f"demote it to {stage}; use 'featurelake models transition' for a deliberate demotion")
    decision = evaluate_gates(config, name, candidate, stage)
    if decision.promoted:
        chosen = DEFAULT_ALIASES.get(stage) if alias == "default" else alias
        with recording(spark, config, name, actor or Actor.of(config, "promote")):
            transition(config, name, candidate.version, stage, archive_existing, alias=chosen)
        logger.debug("promoted %s version %s to %s: %s", name, candidate.version, stage, decision.reason)
    else:
        logger.warning("rejected %s version %s for %s: %s", name, candidate.version, stage, decision.reason)
    record_event(spark, config, decision)
    return decision
