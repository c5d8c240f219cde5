"""The monitoring loop: check a batch; out of range, retrain, compare, promote and rescore - or alert.

    result = run_monitoring(spark, config, "churn_model", "2026-11-26", labels="raw/churn_labels.parquet")

1. The version that scored the batch is checked (:mod:`inference.monitoring.check`); its metrics go to
   ``model_metrics``. All in range: done.
2. Out of range: up to ``max_attempts`` times, train a new version on the fresh labels with
   the training library (a different split seed per attempt), check it on the same batch,
   and record the attempt in ``retrain_attempts``. A candidate that is in range, beats the
   checked version on every metric that was out of range and passes the promotion gates
   (:func:`inference.promotion.promote`) goes to Production, and the batch is scored again
   with it (same batch id: its rows are replaced in one commit).
   A model that ``featurelake train`` did not fit (one logged with ``FeatureStoreClient.log_model``)
   is not retrained (:func:`not_retrainable`): the loop goes straight to step 3.
3. Nothing worked: Production is left alone, one row goes to ``model_alerts``, the notifiers
   are told, and :class:`ModelNeedsRetrainingError` (exit code 6) is raised.
"""

from __future__ import annotations

import copy
import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Sequence

from pyspark.sql import DataFrame, SparkSession

from featurestore.core.config import Config
from featurestore.core.errors import BadInputError, FeaturelakeError, ModelNeedsRetrainingError
from inference.comparison import improvement
from inference.monitoring import batch_data, tables
from inference.monitoring.check import CheckResult, check_candidate, check_production, prepare_inputs
from inference.monitoring.metrics import QUALITY_METRICS, MetricValue, higher_is_better, parse_thresholds
from inference.monitoring.notifier import Alert, Notifier, build_notifiers, deliver
from inference.settings import MONITORING, TRAINING

logger = logging.getLogger(__name__)


@dataclass
class Attempt:
    """One retraining attempt (also a row of ``retrain_attempts``)."""

    attempt: int
    candidate_version: int | None
    run_id: str | None
    outcome: str          # promoted | rejected | failed
    reason: str
    check: CheckResult | None = None


@dataclass
class MonitorResult:
    """What one monitoring run found and did."""

    monitor_run_id: str
    model_name: str
    batch_id: str
    status: str                                    # in_range | retrained | alerted
    checked_version: int
    production_version: int | None
    check: CheckResult
    attempts: list[Attempt] = field(default_factory=list)
    alert: Alert | None = None
    rescored_rows: int | None = None


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(microsecond=0)


def _metric_rows(run_id: str, check: CheckResult, at: datetime) -> list[dict]:
    return [{"monitor_run_id": run_id, "model_name": check.model_name, "model_version": check.model_version,
             "batch_id": check.batch_id, "metric": v.metric, "value": v.value,
             "threshold": None if v.threshold is None else str(v.threshold), "in_range": v.in_range,
             "role": check.role, "checked_at": at} for v in check.values]


def improves(metric: MetricValue, candidate: CheckResult) -> bool:
    """True when ``candidate``'s value of ``metric`` is strictly better than ``metric.value``."""
    value = candidate.value(metric.metric)
    return value is not None and improvement(value, metric.value, higher_is_better(metric.metric)) > 0


def _attempt_config(config: Config, attempt: int) -> Config:
    """The configuration for one attempt: the same, with a different split seed."""
    cfg = copy.deepcopy(config)
    TRAINING.of(cfg).seed = TRAINING.of(config).seed + attempt - 1
    return cfg


def _judge(check: CheckResult, candidate: CheckResult) -> str | None:
    """Why ``candidate`` may not replace the checked version (None: it may)."""
    if not candidate.in_range:
        return f"candidate still out of range: {candidate.summary()}"
    worse = [m.metric for m in check.out_of_range if not improves(m, candidate)]
    if worse:
        return f"does not improve on version {check.model_version} for {', '.join(worse)}"
    return None


def _rescore(spark: SparkSession, config: Config, batch: batch_data.BatchPredictions,
             source: str | DataFrame | None) -> int:
    """Score the batch again with the Production model (same batch id: its rows are replaced)."""
    from inference.batch import run_batch_inference

    if source is None:
        # The batch's entities, materialised before their table is overwritten.
        source = batch.frame.select(*batch.keys).distinct().localCheckpoint(eager=True)
    result = run_batch_inference(spark, config, source, f"models:/{batch.model_name}/Production",
                                 output_table=batch.table, batch_id=batch.batch_id, keys=batch.keys)
    return result.rows_written


def run_monitoring(spark: SparkSession, config: Config, model_name: str, batch_id: str,
                   labels: str | DataFrame | None = None, *, max_attempts: int | None = None,
                   notifiers: Sequence[Notifier] | None = None,
                   input_source: str | DataFrame | None = None) -> MonitorResult:
    """Check batch ``batch_id`` of ``model_name``; retrain, promote and rescore, or alert.

    Args:
        spark: the session.
        config: the project configuration (``monitoring``, ``training``, ``promotion``).
        model_name: the registered model whose predictions are checked.
        batch_id: the batch in the predictions table.
        labels: labels that arrived (path or DataFrame); used for quality metrics and as the
            fresh data to retrain on (default for retraining: ``training.labels_path``).
        max_attempts: retraining attempts (default ``monitoring.max_attempts``).
        notifiers: where alerts go (default: log, plus the configured webhook).
        input_source: what to rescore after a promotion (default: the batch's entities).

    Returns:
        The result; ``status`` is ``in_range`` or ``retrained``.

    Raises:
        BadInputError: no or invalid thresholds, labels that cannot be joined, bad names.
        NotFoundError: no predictions for the batch.
        ModelNeedsRetrainingError: out of range and no attempt fixed it (after the alert is
            recorded); its ``result`` attribute holds the :class:`MonitorResult`.
    """
    from inference import registry
    from inference.governance.changes import Actor
    from inference.promotion import promote
    from inference.training import train_model

    settings = MONITORING.of(config)
    thresholds = parse_thresholds(settings.thresholds)
    max_attempts = settings.max_attempts if max_attempts is None else max_attempts
    if not isinstance(max_attempts, int) or max_attempts < 0:
        raise BadInputError(f"max attempts must be a whole number >= 0, got {max_attempts!r}")
    notifiers = list(notifiers) if notifiers is not None else build_notifiers(settings.webhook_url)

    batch = batch_data.load_batch(spark, config, model_name, batch_id)
    labeled = None
    if labels is not None:
        labels_df = batch_data.read_labels(spark, labels) if isinstance(labels, str) else labels
        labeled = batch_data.labeled_predictions(batch, labels_df)
    elif any(m in thresholds for m in QUALITY_METRICS):
        logger.warning("no labels given: quality metrics (%s) cannot be computed for batch %s",
                       ", ".join(m for m in thresholds if m in QUALITY_METRICS), batch_id)
    inputs = prepare_inputs(spark, config, batch, labeled)
    run_id = uuid.uuid4().hex
    check = check_production(spark, config, inputs, thresholds)
    tables.write_rows(spark, config, tables.MODEL_METRICS, _metric_rows(run_id, check, _now()))
    production = registry.production_version(config, model_name)
    result = MonitorResult(run_id, model_name, batch_id, "in_range", batch.model_version,
                           int(production.version) if production else None, check)
    if check.in_range:
        logger.info("model %s version %d, batch %s: %s", model_name, batch.model_version, batch_id, check.summary())
        return result

    decisive = check.out_of_range[0]
    refusal = not_retrainable(config, model_name, batch.model_version)
    if refusal is not None:
        logger.warning("%s", refusal)
        max_attempts = 0
    for number in range(1, max_attempts + 1):
        incumbent = registry.production_version(config, model_name)
        attempt = _try_candidate(spark, config, inputs, thresholds, check, number, run_id, train_model, labels)
        if attempt.outcome == "candidate_ok":
            decision = promote(spark, config, model_name, attempt.candidate_version, "Production",
                               actor=Actor.of(config, "monitor"))
            attempt.outcome = "promoted" if decision.promoted else "rejected"
            attempt.reason = (f"improves on version {check.model_version} and in range; promotion: {decision.reason}"
                              if decision.promoted else f"promotion gates: {decision.reason}")
        tables.write_rows(spark, config, tables.RETRAIN_ATTEMPTS, [
            _attempt_row(run_id, check, decisive, attempt, incumbent)])
        result.attempts.append(attempt)
        logger.info("attempt %d/%d: %s (%s)", number, max_attempts, attempt.outcome, attempt.reason)
        if attempt.outcome == "promoted":
            result.status = "retrained"
            result.production_version = attempt.candidate_version
            result.rescored_rows = _rescore(spark, config, batch, input_source)
            return result

    result.status = "alerted"
    result.alert = _raise_alert(spark, config, run_id, check, result.attempts, notifiers, refusal)
    error = ModelNeedsRetrainingError(result.alert.message)
    error.result = result  # type: ignore[attr-defined]
    raise error


def not_retrainable(config: Config, model_name: str, version: int) -> str | None:
    """Why the loop may not retrain ``model_name`` (None: it may).

    Retraining fits the configured estimator (``training`` section) under the model's name,
    which is only a new version of the same model when ``featurelake train`` fitted the
    checked version. A model the user fitted and logged (``FeatureStoreClient.log_model``, or
    MLflow directly) is not replaced by another estimator: the loop alerts instead, and the
    user retrains it where it was built. Runs logged before ``featurelake.trainer`` existed
    count as ``featurelake train``'s when they carry its ``estimator`` parameter.
    """
    from inference import registry
    from inference.logged_models import TAG_TRAINER, TRAINER_CLI
    from inference.tracking import client as mlflow_client
    from inference.tracking import mlflow_call

    run_id = registry.get_version(config, model_name, version).run_id
    run = mlflow_call(lambda: mlflow_client(config).get_run(run_id), f"MLflow run {run_id!r}") if run_id else None
    trainer = run.data.tags.get(TAG_TRAINER) if run is not None else None
    if trainer == TRAINER_CLI or (trainer is None and run is not None and "estimator" in run.data.params):
        return None
    return (f"model {model_name!r} version {version} was not trained by `featurelake train` "
            f"(logged by {trainer or 'MLflow directly'}), so the monitoring loop does not retrain it: retrain it "
            "where it was built and log a new version with FeatureStoreClient.log_model")


def _try_candidate(spark: SparkSession, config: Config, inputs, thresholds, check: CheckResult, number: int,
                   run_id: str, train_model, labels: str | DataFrame | None) -> Attempt:
    """Train and check one candidate; outcome ``candidate_ok``, ``rejected`` or ``failed``."""
    try:
        trained = train_model(spark, _attempt_config(config, number), labels, model_name=check.model_name,
                              run_name=f"retrain-{check.batch_id}-{number}",
                              source=f"featurelake monitor (run {run_id}, batch {check.batch_id})")
    except FeaturelakeError as exc:
        return Attempt(number, None, None, "failed", f"training failed: {type(exc).__name__}: {exc}")
    version = int(trained.model_version)
    candidate = check_candidate(spark, config, inputs, thresholds, version, trained.spec)
    tables.write_rows(spark, config, tables.MODEL_METRICS, _metric_rows(run_id, candidate, _now()))
    reason = _judge(check, candidate)
    if reason is not None:
        return Attempt(number, version, trained.run_id, "rejected", reason, candidate)
    return Attempt(number, version, trained.run_id, "candidate_ok", "", candidate)


def _attempt_row(run_id: str, check: CheckResult, decisive: MetricValue, attempt: Attempt, incumbent) -> dict:
    value = attempt.check.value(decisive.metric) if attempt.check else None
    threshold = decisive.threshold
    return {
        "monitor_run_id": run_id, "model_name": check.model_name, "model_version": attempt.candidate_version,
        "batch_id": check.batch_id, "metric": decisive.metric, "value": value,
        "threshold": None if threshold is None else str(threshold),
        "in_range": None if value is None or threshold is None else threshold.accepts(value),
        "attempt": attempt.attempt, "run_id": attempt.run_id,
        "incumbent_version": int(incumbent.version) if incumbent is not None else check.model_version,
        "incumbent_value": decisive.value, "outcome": attempt.outcome, "reason": attempt.reason[:2000],
        "attempted_at": _now(),
    }


def _raise_alert(spark: SparkSession, config: Config, run_id: str, check: CheckResult, attempts: list[Attempt],
                 notifiers: Sequence[Notifier], refusal: str | None = None) -> Alert:
    """Notify, then write the one alert row of this run (with how each notifier fared)."""
    decisive = check.out_of_range[0]
    tried = ("; ".join(f"attempt {a.attempt}: {a.outcome} ({a.reason})" for a in attempts)
             or refusal or "no attempt allowed")
    message = (f"model {check.model_name} version {check.model_version} is out of range on batch {check.batch_id}: "
               f"{check.summary()}. {len(attempts)} retraining attempt(s) did not fix it [{tried}]. "
               "Production was left unchanged.")
    at = _now()
    alert = Alert(uuid.uuid4().hex, check.model_name, check.model_version, check.batch_id, decisive.metric,
                  decisive.value, str(decisive.threshold), len(attempts), message, at.isoformat())
    delivery = deliver(alert, notifiers)
    tables.write_rows(spark, config, tables.MODEL_ALERTS, [{
        "monitor_run_id": run_id, "model_name": alert.model_name, "model_version": alert.model_version,
        "batch_id": alert.batch_id, "metric": alert.metric, "value": alert.value, "threshold": alert.threshold,
        "in_range": False, "alert_id": alert.alert_id, "attempts": alert.attempts, "message": message[:4000],
        "delivery": delivery, "raised_at": at,
    }])
    return alert
