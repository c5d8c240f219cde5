"""The monitoring Delta tables: created with metadata, merged or appended in one commit each."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from inference.monitoring.tables import MODEL_ALERTS, MODEL_METRICS, read_table, write_rows


def _metric(metric, value, version=1, run="r1"):
    return {"monitor_run_id": run, "model_name": "churn", "model_version": version, "batch_id": "b1",
            "metric": metric, "value": value, "threshold": ">= 0.7", "in_range": value >= 0.7,
            "role": "production", "checked_at": datetime(2026, 11, 26, tzinfo=timezone.utc)}


def test_metrics_rerun_replaces_rows(spark, project):
    assert read_table(spark, project, MODEL_METRICS) is None
    assert write_rows(spark, project, MODEL_METRICS, []) is None
    v1 = write_rows(spark, project, MODEL_METRICS, [_metric("auc", 0.6), _metric("f1", 0.5)])
    v2 = write_rows(spark, project, MODEL_METRICS, [_metric("auc", 0.8, run="r2"), _metric("auc", 0.9, version=2)])
    assert v2 == v1 + 1
    rows = {(r.model_version, r.metric): r for r in read_table(spark, project, MODEL_METRICS).collect()}
    assert len(rows) == 3
    assert rows[(1, "auc")].value == 0.8 and rows[(1, "auc")].monitor_run_id == "r2"
    assert rows[(1, "auc")].in_range is True and rows[(1, "f1")].in_range is False
    detail = spark.sql(f"DESCRIBE DETAIL delta.`{project.table_path('model_metrics')}`").first()
    assert detail["properties"]["featurelake.kind"] == "model_metrics"
    comments = {f.name: f.metadata.get("comment") for f in read_table(spark, project, MODEL_METRICS).schema.fields}
    assert "Accepted range" in comments["threshold"]


def test_alerts_append_and_refuse_unknown_columns(spark, project):
    row = {"alert_id": "a1", "model_name": "churn", "metric": "auc", "value": 0.5, "attempts": 3}
    write_rows(spark, project, MODEL_ALERTS, [row])
    write_rows(spark, project, MODEL_ALERTS, [{**row, "alert_id": "a2"}])
    assert sorted(r.alert_id for r in read_table(spark, project, MODEL_ALERTS).collect()) == ["a1", "a2"]
    with pytest.raises(ValueError, match="unknown column"):
        write_rows(spark, project, MODEL_ALERTS, [{"alert_id": "a3", "nope": 1}])
    assert read_table(spark, project, MODEL_ALERTS).count() == 2
