"""The monitoring loop end to end on the demo data, with drift injected on purpose.

One module-scoped project: the demo's feature tables (linked read-only from the session's
demo project), a churn model v1 trained and promoted, and batch ``b1`` scored with it.
Labels are then replaced on purpose: the original ones (in range), random ones (nothing can
fix them: alert), and ones driven by tenure in the opposite direction (a retrain fixes it).
"""

from __future__ import annotations

import copy
import os
import socket
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from pyspark.sql import functions as F

from featurestore.core.config import Config
from featurestore.core.errors import BadInputError, ModelNeedsRetrainingError, NotFoundError, exit_code_for
from featurestore.delta_tables import current_version
from inference.monitoring.loop import run_monitoring
from inference.monitoring.tables import MODEL_ALERTS, MODEL_METRICS, RETRAIN_ATTEMPTS, read_table
from inference.settings import MONITORING, TRAINING, configured_model_name

FEATURE_TABLES = ("customer_profile", "customer_weekly_spend")


def _closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}/alerts"


@pytest.fixture(scope="module")
def monitored(spark, demo_project, tmp_path_factory):
    from inference.batch import run_batch_inference
    from inference.promotion import promote
    from inference.training import train_model

    root = tmp_path_factory.mktemp("monitoring")
    config: Config = copy.deepcopy(demo_project)
    config.warehouse = str(root / "warehouse")
    os.makedirs(config.warehouse)
    for table in FEATURE_TABLES:  # the session's feature tables, read-only, under our own warehouse
        os.symlink(demo_project.table_path(table), config.table_path(table))
    config.mlflow.tracking_uri = f"sqlite:///{root / 'mlflow.db'}"
    config.mlflow.artifact_location = str(root / "mlartifacts")
    config.feast.repo_path = str(root / "feast_repo")
    MONITORING.of(config).max_attempts = 2
    name = configured_model_name(config)

    v1 = train_model(spark, config, run_name="v1")
    assert promote(spark, config, name, v1.model_version, "Production").promoted
    labels_path = TRAINING.of(config).labels_path
    labels = spark.read.parquet(labels_path)
    run_batch_inference(spark, config, labels.select("customer_id"), f"models:/{name}/Production", batch_id="b1")

    # Drift injected on purpose: labels that no model can learn ...
    random_labels = str(root / "random_labels.parquet")
    (labels.withColumn("churned", F.pmod(F.xxhash64("customer_id", F.lit(11)), F.lit(2)).cast("bigint"))
     .write.parquet(random_labels))
    # ... and labels driven by tenure, in the opposite direction of the original churn.
    customers = spark.read.parquet(str(Path(labels_path).parent / "customers.parquet")).select(
        "customer_id", F.datediff("updated_at", "signup_date").alias("tenure"))
    median = customers.approxQuantile("tenure", [0.5], 0.0)[0]
    tenure_labels = str(root / "tenure_labels.parquet")
    (labels.drop("churned").join(customers, "customer_id")
     .select("customer_id", "label_time", (F.col("tenure") > median).cast("bigint").alias("churned"))
     .write.parquet(tenure_labels))
    return SimpleNamespace(config=config, name=name, v1=int(v1.model_version), labels=labels_path,
                           random_labels=random_labels, tenure_labels=tenure_labels, root=root)


def _with(config: Config, **monitoring) -> Config:
    cfg = copy.deepcopy(config)
    for key, value in monitoring.items():
        setattr(MONITORING.of(cfg), key, value)
    return cfg


def _production(config: Config, name: str) -> int:
    from inference import registry

    return int(registry.production_version(config, name).version)


def _rows(spark, config, table, run_id=None):
    df = read_table(spark, config, table)
    if df is None:
        return []
    rows = df.collect()
    return [r for r in rows if run_id is None or r.monitor_run_id == run_id]


@pytest.mark.slow
def test_in_range_records_metrics_and_does_not_retrain(spark, monitored):
    config = _with(monitored.config, thresholds={"auc": ">= 0.6", "feature_psi": "<= 0.25",
                                                 "prediction_psi": "<= 0.25", "row_count": ">= 100"})
    result = run_monitoring(spark, config, monitored.name, "b1", monitored.labels)
    assert result.status == "in_range" and result.attempts == []
    metrics = {r.metric: r for r in _rows(spark, config, MODEL_METRICS, result.monitor_run_id)}
    assert {"auc", "accuracy", "f1", "row_count", "labeled_rows", "label_coverage", "prediction_psi",
            "feature_psi.spend_7d", "feature_psi.country"} <= set(metrics)
    assert metrics["row_count"].value == 120 and metrics["label_coverage"].value == 1.0
    assert metrics["auc"].value >= 0.6 and metrics["auc"].in_range is True and metrics["auc"].threshold == ">= 0.6"
    assert metrics["feature_psi.spend_7d"].value < 0.01  # same Delta versions as at training time
    assert metrics["accuracy"].in_range is None          # recorded, no threshold
    assert all(r.model_version == monitored.v1 and r.role == "production" for r in metrics.values())
    assert _rows(spark, config, RETRAIN_ATTEMPTS, result.monitor_run_id) == []
    assert _production(config, monitored.name) == monitored.v1


@pytest.mark.slow
def test_unknown_batch_and_unjoinable_labels_are_refused_without_writes(spark, monitored):
    config = _with(monitored.config, thresholds={"auc": ">= 0.6"})
    before = current_version(spark, config.table_path("model_metrics"))
    with pytest.raises(NotFoundError, match="batch 'no_such_batch'"):
        run_monitoring(spark, config, monitored.name, "no_such_batch", monitored.labels)
    labels = spark.read.parquet(monitored.labels)
    with pytest.raises(BadInputError, match="customer_id.*missing"):
        run_monitoring(spark, config, monitored.name, "b1", labels.withColumnRenamed("customer_id", "cust"))
    with pytest.raises(BadInputError, match="no label matches"):
        run_monitoring(spark, config, monitored.name, "b1", labels.withColumn("customer_id", F.col("customer_id") + 10_000))
    with pytest.raises(BadInputError, match="key 'customer_id' is string"):
        run_monitoring(spark, config, monitored.name, "b1",
                       labels.withColumn("customer_id", F.concat(F.lit("c"), F.col("customer_id"))))
    assert current_version(spark, config.table_path("model_metrics")) == before


@pytest.mark.slow
def test_all_attempts_fail_one_alert_no_promotion_and_failing_webhook_keeps_the_alert(spark, monitored):
    config = _with(monitored.config, thresholds={"auc": ">= 0.7"}, max_attempts=2, webhook_url=_closed_port_url())
    with pytest.raises(ModelNeedsRetrainingError) as caught:
        run_monitoring(spark, config, monitored.name, "b1", monitored.random_labels)
    assert exit_code_for(caught.value) == 6
    result = caught.value.result
    attempts = _rows(spark, config, RETRAIN_ATTEMPTS, result.monitor_run_id)
    assert sorted(r.attempt for r in attempts) == [1, 2]
    assert all(r.outcome == "rejected" and r.metric == "auc" and r.incumbent_version == monitored.v1
               for r in attempts)
    alerts = _rows(spark, config, MODEL_ALERTS, result.monitor_run_id)
    assert len(alerts) == 1
    alert = alerts[0]
    assert (alert.model_version, alert.batch_id, alert.metric, alert.in_range, alert.attempts) == (
        monitored.v1, "b1", "auc", False, 2)
    assert alert.value < 0.7 and alert.threshold == ">= 0.7"
    assert "log: sent" in alert.delivery and "webhook: failed" in alert.delivery
    assert _production(config, monitored.name) == monitored.v1
    versions = {r.model_version for r in spark.read.format("delta").load(config.table_path("predictions"))
                .where("batch_id = 'b1'").select("model_version").collect()}
    assert versions == {monitored.v1}


@pytest.mark.slow
def test_retrain_fixes_drift_promotes_and_rescores_the_batch(spark, monitored):
    config = _with(monitored.config, thresholds={"auc": ">= 0.7"}, max_attempts=2)
    predictions_path = config.table_path("predictions")
    rows_before = spark.read.format("delta").load(predictions_path).where("batch_id = 'b1'").count()
    result = run_monitoring(spark, config, monitored.name, "b1", monitored.tenure_labels)
    assert result.status == "retrained"
    assert result.check.value("auc") < 0.7                  # the drifted batch was out of range
    new = result.production_version
    assert new is not None and new != monitored.v1
    assert _production(config, monitored.name) == new
    attempts = _rows(spark, config, RETRAIN_ATTEMPTS, result.monitor_run_id)
    assert [r.outcome for r in sorted(attempts, key=lambda r: r.attempt)][-1] == "promoted"
    promoted = [r for r in attempts if r.outcome == "promoted"][0]
    assert promoted.model_version == new and promoted.value >= 0.7 and promoted.in_range is True
    candidate = {r.metric: r for r in _rows(spark, config, MODEL_METRICS, result.monitor_run_id)
                 if r.model_version == new}
    assert candidate["auc"].role == "candidate" and candidate["auc"].in_range is True
    batch = spark.read.format("delta").load(predictions_path).where("batch_id = 'b1'")
    assert batch.count() == rows_before == result.rescored_rows
    assert {r.model_version for r in batch.select("model_version").distinct().collect()} == {new}
    assert _rows(spark, config, MODEL_ALERTS, result.monitor_run_id) == []


@pytest.mark.slow
def test_a_point_in_time_batch_is_matched_and_rescored_by_key_and_time(spark, monitored):
    from inference.batch import run_batch_inference
    from inference.monitoring.batch_data import labeled_predictions, load_batch
    from inference.monitoring.loop import _rescore

    config = _with(monitored.config, thresholds={"row_count": "> 0"}, predictions_table="predictions_pit")
    labels = spark.read.parquet(monitored.labels)
    n = labels.count()
    at_label_time = labels.select("customer_id", "label_time")
    week_before = at_label_time.withColumn("label_time", F.col("label_time") - F.expr("INTERVAL 7 DAYS"))
    run_batch_inference(spark, config, at_label_time.unionByName(week_before),
                        f"models:/{monitored.name}/{monitored.v1}", output_table="predictions_pit", batch_id="pit")

    batch = load_batch(spark, config, monitored.name, "pit")
    assert batch.keys == ["customer_id", "label_time"] and batch.row_count == 2 * n
    assert labeled_predictions(batch, labels).count() == n  # a label matches the prediction at its own time
    result = run_monitoring(spark, config, monitored.name, "pit", monitored.labels)
    metrics = {r.metric: r.value for r in _rows(spark, config, MODEL_METRICS, result.monitor_run_id)}
    assert (metrics["row_count"], metrics["labeled_rows"], metrics["label_coverage"]) == (2 * n, n, 0.5)

    assert _rescore(spark, config, batch, None) == 2 * n  # what a promotion runs: every entity at every time
    rescored = (spark.read.format("delta").load(config.table_path("predictions_pit")).where("batch_id = 'pit'")
                .select("customer_id", "label_time"))
    assert rescored.distinct().count() == rescored.count() == 2 * n


def test_the_summary_shows_the_checked_values_and_their_bounds():
    from inference.monitoring.check import CheckResult
    from inference.monitoring.metrics import MetricValue, parse_threshold

    auc, rows = parse_threshold("auc", ">= 0.7"), parse_threshold("row_count", ">= 100")
    in_range = CheckResult("churn_model", 1, "b1", "production", [
        MetricValue("auc", 0.831234, auc), MetricValue("accuracy", 0.9, None), MetricValue("row_count", 120.0, rows)])
    assert in_range.summary() == "all metrics in range: auc 0.8312 (>= 0.7), row_count 120 (>= 100)"
    out = CheckResult("churn_model", 1, "b1", "production", [MetricValue("auc", 0.41, auc)])
    assert out.summary() == "auc 0.41 not >= 0.7"


# --- bad configuration: refused before anything is read or written --------------------------

def test_no_metrics_configured_is_refused(spark, project):
    with pytest.raises(BadInputError, match="no metrics configured"):
        run_monitoring(spark, project, "churn_model", "b1")


def test_thresholds_that_cannot_be_compared_exit_2(spark, project, tmp_path):
    from jobs.monitor import main

    config_file = tmp_path / "featurelake.yaml"
    config_file.write_text(yaml.safe_dump({"warehouse": str(tmp_path / "w"),
                                           "monitoring": {"thresholds": {"auc": "high"}}}))
    assert main(["--config", str(config_file), "--model-name", "churn_model", "--batch-id", "b1"]) == 2
    config_file.write_text(yaml.safe_dump({"warehouse": str(tmp_path / "w"),
                                           "monitoring": {"thresholds": {"auc": ">= 0.7"}}}))
    assert main(["--config", str(config_file), "--model-name", "churn_model", "--batch-id", "b1"]) == 3
    assert not (tmp_path / "w" / "model_metrics").exists()
