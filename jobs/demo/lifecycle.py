"""The demo's model lifecycle step: train a churn model, register it, promote it to Production."""

from __future__ import annotations

import logging

from pyspark.sql import SparkSession

from featurestore.core.config import Config
from inference.promotion import PromotionDecision, promote
from inference.settings import PROMOTION, TRAINING, LookupSettings
from inference.training import TrainingResult, train_model

logger = logging.getLogger(__name__)

MODEL_NAME = "churn_model"
LABELS_PATH = "raw/churn_labels.parquet"


def configure_training(config: Config) -> Config:
    """Fill the ``training`` and ``promotion`` sections of the demo configuration."""
    training = TRAINING.of(config)
    training.model_name = MODEL_NAME
    training.labels_path = LABELS_PATH
    training.label = "churned"
    training.lookups = [
        LookupSettings(table="customer_profile", features=["age", "tenure_days", "monthly_fee", "country"],
                       timestamp_lookup_key="label_time"),
        LookupSettings(table="customer_weekly_spend",
                       features=["txn_count_7d", "spend_7d", "avg_amount_7d", "days_since_last_txn"],
                       timestamp_lookup_key="label_time"),
    ]
    training.estimator = "sklearn.linear_model.LogisticRegression"
    training.estimator_params = {"C": "1.0", "max_iter": "500"}
    training.description = "Churn propensity of a customer, from profile and weekly spend features"
    training.tags = {"team": "customer-analytics", "demo": "true"}
    training.source_url = "https://github.com/featurelake/featurelake/blob/main/demo/lifecycle.py"
    PROMOTION.of(config).metric = "roc_auc"
    PROMOTION.of(config).thresholds = {"roc_auc": ">= 0.6"}
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
