"""The demo's model lifecycle step: train a churn model, register it, promote it to Production."""

from __future__ import annotations

import logging

from pyspark.sql import SparkSession

from featurestore.core.config import Config, LookupSettings
from inference.promotion import PromotionDecision, promote
from inference.training import TrainingResult, train_model

logger = logging.getLogger(__name__)

MODEL_NAME = "churn_model"
LABELS_PATH = "raw/churn_labels.parquet"


def configure_training(config: Config) -> Config:
    """Fill the ``training`` and ``promotion`` sections of the demo configuration."""
    config.training.model_name = MODEL_NAME
    config.training.labels_path = LABELS_PATH
    config.training.label = "churned"
    config.training.lookups = [
        LookupSettings(table="customer_profile", features=["age", "tenure_days", "monthly_fee", "country"],
                       timestamp_lookup_key="label_time"),
        LookupSettings(table="customer_weekly_spend",
                       features=["txn_count_7d", "spend_7d", "avg_amount_7d", "days_since_last_txn"],
                       timestamp_lookup_key="label_time"),
    ]
    config.training.estimator = "sklearn.linear_model.LogisticRegression"
    config.training.estimator_params = {"C": "1.0", "max_iter": "500"}
    config.training.description = "Churn propensity of a customer, from profile and weekly spend features"
    config.training.tags = {"team": "customer-analytics", "demo": "true"}
    config.training.source_url = "https://github.com/featurelake/featurelake/blob/main/demo/lifecycle.py"
    config.promotion.metric = "roc_auc"
    config.promotion.thresholds = {"roc_auc": ">= 0.6"}
    return config


def train_and_promote(spark: SparkSession, config: Config) -> tuple[TrainingResult, list[PromotionDecision]]:
    """Train and register ``churn_model``, then promote it through Staging to Production (alias champion)."""
    result = train_model(spark, config, run_name="demo-churn")
    logger.info("trained %s version %s (run %s): roc_auc=%.3f", result.model_name, result.model_version,
                result.run_id, result.metrics.get("roc_auc", float("nan")))
    decisions = []
    for stage in ("Staging", "Production"):
        decision = promote(spark, config, result.model_name, result.model_version, stage)
        decisions.append(decision)
        logger.info("promotion of %s version %s to %s: %s (%s)", result.model_name, result.model_version, stage,
                    decision.decision, decision.reason)
        if not decision.promoted:
            break
    return result, decisions
