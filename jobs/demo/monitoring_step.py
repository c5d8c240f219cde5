"""The demo's monitoring step (``featurelake demo --monitor``): the retraining loop on purpose.

1. Batch ``demo-monitor-1`` is scored with the Production model and checked against the
   labels that arrived: in range, nothing else happens.
2. Drift is injected: new labels in which long-standing customers churn (the opposite of
   what the model learned). Batch ``demo-monitor-2`` is scored and checked: out of range,
   so the loop retrains on the new labels, promotes the better version to Production and
   rescores the batch. Everything lands in model_metrics, retrain_attempts (and
   promotion_events); ``featurelake monitor`` exits 6 when no retrain helps.
"""

from __future__ import annotations

import logging
from pathlib import Path

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from featurestore.core.config import Config
from featurestore.core.errors import ModelNeedsRetrainingError
from inference.monitoring.loop import MonitorResult, run_monitoring
from inference.settings import MONITORING, TRAINING, configured_model_name

logger = logging.getLogger(__name__)

THRESHOLDS = {"auc": ">= 0.7", "feature_psi": "<= 0.25", "prediction_psi": "<= 0.5", "row_count": "> 0"}
DRIFTED_LABELS = "raw/churn_labels_drifted.parquet"


def configure_monitoring(config: Config) -> Config:
    """Fill the ``monitoring`` section of the demo configuration."""
    MONITORING.of(config).thresholds = dict(THRESHOLDS)
    MONITORING.of(config).max_attempts = 3
    return config


def write_drifted_labels(spark: SparkSession, config: Config) -> str:
    """Write labels in which the longest-standing half of the customers churn; return the path."""
    raw = Path(config.source_root) / "raw"
    labels = spark.read.parquet(str(raw / "churn_labels.parquet"))
    customers = spark.read.parquet(str(raw / "customers.parquet")).select(
        "customer_id", F.datediff("updated_at", "signup_date").alias("tenure"))
    median = customers.approxQuantile("tenure", [0.5], 0.0)[0]
    target = str(Path(config.source_root) / DRIFTED_LABELS)
    (labels.drop("churned").join(customers, "customer_id")
     .select("customer_id", "label_time", (F.col("tenure") > median).cast("bigint").alias("churned"))
     .write.mode("overwrite").parquet(target))
    return target


def _score(spark: SparkSession, config: Config, batch_id: str) -> None:
    from inference.batch import run_batch_inference

    entities = spark.read.parquet(str(Path(config.source_root) / "raw" / "churn_labels.parquet")).select("customer_id")
    run_batch_inference(spark, config, entities, f"models:/{configured_model_name(config)}/Production",
                        batch_id=batch_id)


def run_monitoring_demo(spark: SparkSession, config: Config) -> list[MonitorResult]:
    """Score and check one batch as is, then one with drift injected; return both results."""
    if not MONITORING.of(config).thresholds:
        configure_monitoring(config)
    results = []
    name = configured_model_name(config)
    for batch_id, labels in (("demo-monitor-1", TRAINING.of(config).labels_path),
                             ("demo-monitor-2", write_drifted_labels(spark, config))):
        _score(spark, config, batch_id)
        try:
            result = run_monitoring(spark, config, name, batch_id, labels)
        except ModelNeedsRetrainingError as exc:
            result = exc.result  # type: ignore[attr-defined]
        logger.info("monitoring batch %s: %s (%s)%s", batch_id, result.status, result.check.summary(),
                    f"; version {result.production_version} now in Production" if result.status == "retrained" else "")
        results.append(result)
    return results
