"""The demo's batch-inference step: score the demo customers with the Production churn model."""

from __future__ import annotations

import logging
from pathlib import Path

from pyspark.sql import SparkSession

from featurestore.core.config import Config
from inference.batch import BatchResult, run_batch_inference

logger = logging.getLogger(__name__)

MODEL_URI = "models:/churn_model/Production"
ENTITIES_PATH = "raw/scoring_entities.parquet"
BATCH_ID = "demo"


def write_scoring_entities(spark: SparkSession, config: Config) -> str:
    """Write the customers to score (keys only: the job looks the features up) and return the path."""
    root = Path(config.source_root)
    path = str(root / ENTITIES_PATH)
    spark.read.parquet(str(root / "raw" / "customers.parquet")).select("customer_id") \
        .write.mode("overwrite").parquet(path)
    return path


def score_demo_customers(spark: SparkSession, config: Config, show: int = 5) -> BatchResult:
    """Score every demo customer with ``models:/churn_model/Production`` and log a few prediction rows."""
    entities = write_scoring_entities(spark, config)
    result = run_batch_inference(spark, config, entities, MODEL_URI, batch_id=BATCH_ID)
    rows = (spark.read.format("delta").load(result.output_path)
            .filter(f"batch_id = '{BATCH_ID}'").orderBy("customer_id").limit(show).collect())
    logger.info("predictions of batch %s (first %d of %d rows in %s):", BATCH_ID, len(rows), result.rows_written,
                result.output_path)
    for row in rows:
        logger.info("  customer_id=%s prediction=%s probability=%.3f model=%s v%s scored_at=%s", row["customer_id"],
                    row["prediction"], row["probability"], row["model_name"], row["model_version"], row["scored_at"])
    return result
