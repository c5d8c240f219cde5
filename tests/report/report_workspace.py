"""A small workspace for the report tests: the demo's feature tables (copied), a registered
model with two versions in a real MLflow SQLite registry, promotion events, monitoring rows, a
pending transition request and a comment."""

from __future__ import annotations

import json
import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path

from pyspark.sql import types as T

from featurestore.core.config import Config, resolve_paths, write_config
from inference.monitoring.tables import MODEL_ALERTS, MODEL_METRICS, RETRAIN_ATTEMPTS, write_rows

MODEL = "churn_model"
HTML_DESCRIPTION = ('<b>Bold</b> & <script>window.__pwned = 1</script>'
                    '<img src="x" onerror="window.__pwned = 2"> profile')
T0 = datetime(2026, 3, 2, 6, 0, tzinfo=timezone.utc)


def make_project(root: Path) -> Config:
    """A project under ``root`` with its own warehouse and MLflow store, plus its config file."""
    config = Config(warehouse="warehouse")
    config.mlflow.tracking_uri = "sqlite:///mlflow.db"
    config = resolve_paths(config, root)
    write_config(config, root / "featurelake.yaml")
    return config


def copy_demo_tables(demo: Config, config: Config) -> None:
    """Copy the demo's feature tables into ``config``'s warehouse."""
    for name in ("customer_profile", "customer_weekly_spend"):
        shutil.copytree(demo.table_path(name), config.table_path(name))


def damage_metadata(spark, config: Config) -> None:
    """Give customer_profile an HTML description and drop its owner and notebook properties."""
    target = f"delta.`{config.table_path('customer_profile')}`"
    spark.sql(f"ALTER TABLE {target} SET TBLPROPERTIES ('featurelake.description' = '{HTML_DESCRIPTION}')")
    spark.sql(f"ALTER TABLE {target} UNSET TBLPROPERTIES ('featurelake.owner', 'featurelake.notebook_url')")


def register_models(config: Config) -> None:
    """Two versions of MODEL: v1 archived, v2 in Production with alias 'champion'."""
    import mlflow
    from mlflow.tracking import MlflowClient

    mlflow.set_tracking_uri(config.mlflow.tracking_uri)
    mlflow.set_registry_uri(config.mlflow.tracking_uri)
    experiment = mlflow.create_experiment("report-test", artifact_location=(Path(config.base_dir) / "mlartifacts").as_uri())
    client = MlflowClient(config.mlflow.tracking_uri)
    client.create_registered_model(MODEL, description="Predicts churn <i>weekly</i>")
    spec = {"label": "churned", "timestamp_key": "label_time", "entity_keys": ["customer_id"],
            "feature_columns": ["age", "spend_7d"],
            "lookups": [{"table": "customer_profile", "path": config.table_path("customer_profile"),
                         "features": ["age"], "lookup_keys": ["customer_id"], "timestamp_lookup_key": "label_time",
                         "ttl_seconds": None, "delta_version": 1},
                        {"table": "customer_weekly_spend", "path": config.table_path("customer_weekly_spend"),
                         "features": ["spend_7d"], "lookup_keys": ["customer_id"],
                         "timestamp_lookup_key": "label_time", "ttl_seconds": 1814400, "delta_version": 1}]}
    for auc in (0.71, 0.78):
        with mlflow.start_run(experiment_id=experiment) as run:
            mlflow.log_metric("roc_auc", auc)
            mlflow.log_metric("log_loss", 0.5)
            mlflow.log_text(json.dumps(spec), "training_set_spec.json")
        client.create_model_version(MODEL, source=f"{run.info.artifact_uri}/model", run_id=run.info.run_id)
    client.transition_model_version_stage(MODEL, "1", "Archived")
    client.transition_model_version_stage(MODEL, "2", "Production")
    client.set_registered_model_alias(MODEL, "champion", "2")


def write_promotion_events(spark, config: Config) -> None:
    """The promotion_events Delta table as the modeling contract describes it."""
    schema = T.StructType([
        T.StructField("model_name", T.StringType()), T.StructField("candidate_version", T.LongType()),
        T.StructField("incumbent_version", T.LongType()), T.StructField("metric", T.StringType()),
        T.StructField("candidate_value", T.DoubleType()), T.StructField("incumbent_value", T.DoubleType()),
        T.StructField("decision", T.StringType()), T.StructField("reason", T.StringType()),
        T.StructField("decided_at", T.TimestampType()),
    ])
    rows = [(MODEL, 1, None, "roc_auc", 0.71, None, "promoted", "no incumbent", T0 - timedelta(days=7)),
            (MODEL, 2, 1, "roc_auc", 0.78, 0.71, "promoted", "roc_auc improved by 0.07", T0)]
    spark.createDataFrame(rows, schema).write.format("delta").save(config.table_path("promotion_events"))


def write_monitoring(spark, config: Config) -> None:
    """Three batches of metrics (the last AUC out of range), drift per feature, an alert, attempts."""
    common = {"monitor_run_id": "run-1", "model_name": MODEL, "model_version": 2}
    metrics = []
    production = {**common, "role": "production"}
    for i, (auc, psi_age, psi_spend) in enumerate(((0.80, 0.02, 0.05), (0.76, 0.04, 0.12), (0.62, 0.05, 0.31))):
        batch = f"2026-03-0{i + 2}"
        at = T0 + timedelta(days=i)
        metrics += [
            {**production, "batch_id": batch, "metric": "auc", "value": auc, "threshold": ">= 0.7",
             "in_range": auc >= 0.7, "checked_at": at},
            {**production, "batch_id": batch, "metric": "row_count", "value": 100.0 + i, "threshold": None,
             "in_range": None, "checked_at": at},
            {**production, "batch_id": batch, "metric": "feature_psi.age", "value": psi_age, "threshold": "<= 0.25",
             "in_range": psi_age <= 0.25, "checked_at": at},
            {**production, "batch_id": batch, "metric": "feature_psi.spend_7d", "value": psi_spend,
             "threshold": "<= 0.25", "in_range": psi_spend <= 0.25, "checked_at": at},
        ]
    metrics.append({**common, "model_version": 3, "role": "candidate", "batch_id": "2026-03-04", "metric": "auc",
                    "value": 0.65, "threshold": ">= 0.7", "in_range": False, "checked_at": T0 + timedelta(days=2)})
    write_rows(spark, config, MODEL_METRICS, metrics)
    write_rows(spark, config, RETRAIN_ATTEMPTS, [
        {**common, "batch_id": "2026-03-04", "metric": "auc", "value": 0.65, "threshold": ">= 0.7", "in_range": False,
         "attempt": n, "model_version": 2 + n, "run_id": f"r{n}", "incumbent_version": 2, "incumbent_value": 0.62,
         "outcome": "rejected", "reason": "auc 0.65 still below >= 0.7", "attempted_at": T0 + timedelta(days=2, hours=n)}
        for n in (1, 2, 3)])
    write_rows(spark, config, MODEL_ALERTS, [
        {**common, "batch_id": "2026-03-04", "metric": "auc", "value": 0.62, "threshold": ">= 0.7", "in_range": False,
         "alert_id": "a-1", "attempts": 3, "message": "auc 0.62 out of range after 3 attempts",
         "delivery": "log: sent", "raised_at": T0 + timedelta(days=2, hours=4)}])


def write_governance(spark, config: Config) -> None:
    """A pending request for v1 (alice), a comment on v2 (carol), both with HTML in their text."""
    from inference.governance.changes import Actor, add_comment
    from inference.governance.requests import request_transition

    request_transition(spark, config, MODEL, 1, "Staging", Actor("alice", "request"), comment="retry <b>v1</b>")
    add_comment(spark, config, MODEL, 2, "AUC holds on the <i>March</i> cohort", Actor("carol", "comment"))


def build_workspace(spark, demo: Config, root: Path) -> Config:
    """Everything above, under ``root``; returns the project configuration."""
    config = make_project(root)
    copy_demo_tables(demo, config)
    damage_metadata(spark, config)
    register_models(config)
    write_promotion_events(spark, config)
    write_monitoring(spark, config)
    write_governance(spark, config)
    return config
