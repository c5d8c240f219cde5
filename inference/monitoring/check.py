"""One check: a model version's metrics on one batch, each against its threshold.

The version that scored the batch is checked on the stored predictions; a retrained
candidate is checked by scoring the same entities (with the current features) in memory,
so the two are compared on the same batch, labels and thresholds.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Mapping

import pandas as pd
from pyspark.sql import DataFrame, SparkSession

from featurestore.core.config import Config
from featurestore.training_set import TrainingSetSpec
from inference.comparison import Threshold
from inference.monitoring import batch_data
from inference.monitoring.metrics import (
    FEATURE_PSI_PREFIX, MetricValue, check_values, classification_metrics, psi, regression_metrics,
)
from inference.settings import TRAINING

logger = logging.getLogger(__name__)


@dataclass
class CheckResult:
    """The metrics of one model version on one batch."""

    model_name: str
    model_version: int
    batch_id: str
    role: str                      # 'production' or 'candidate'
    values: list[MetricValue] = field(default_factory=list)

    @property
    def out_of_range(self) -> list[MetricValue]:
        """The metrics whose value is outside their threshold."""
        return [v for v in self.values if v.in_range is False]

    @property
    def in_range(self) -> bool:
        """True when no metric is out of range."""
        return not self.out_of_range

    def value(self, metric: str) -> float | None:
        """The value of ``metric`` (None when it was not computed)."""
        return next((v.value for v in self.values if v.metric == metric), None)

    def summary(self) -> str:
        """The checked metrics with their values and bounds.

        ``auc 0.41 not >= 0.7`` for each out-of-range metric, else ``all metrics in range:
        auc 0.83 (>= 0.7), row_count 120 (>= 100)``; metrics recorded without a threshold are not shown.
        """
        bad = self.out_of_range
        if bad:
            return ", ".join(f"{v.metric} {v.value:.4g} not {v.threshold}" for v in bad)
        checked = ", ".join(f"{v.metric} {v.value:.4g} ({v.threshold})" for v in self.values
                            if v.threshold is not None)
        return "all metrics in range" + (f": {checked}" if checked else "")


@dataclass
class BatchInputs:
    """What every check of one batch shares: labels, current features, counts (collected once)."""

    batch: batch_data.BatchPredictions
    labels: pd.DataFrame | None          # keys + label, or None without labels
    current_features: pd.DataFrame       # keys + feature columns, current Delta versions
    task: str


def prepare_inputs(spark: SparkSession, config: Config, batch: batch_data.BatchPredictions,
                   labeled: DataFrame | None) -> BatchInputs:
    """Collect the labels and the current features of the batch's entities."""
    keys = batch.frame.select(*batch.keys).distinct()
    current = batch_data.entity_features(spark, config, keys, batch.spec, as_trained=False)
    labels = None
    if labeled is not None:
        labels = batch_data.to_pandas_sample(labeled.select(*batch.keys, "label"))
    return BatchInputs(batch, labels, batch_data.to_pandas_sample(current, batch.row_count),
                       TRAINING.of(config).task)


def metric_values(inputs: BatchInputs, scores: pd.DataFrame, reference_features: pd.DataFrame,
                  reference_scores: pd.DataFrame, feature_columns: list[str]) -> dict[str, float | None]:
    """Every metric of a model on the batch, from its scores and its training-time reference."""
    keys = inputs.batch.keys
    values: dict[str, float | None] = {"row_count": float(inputs.batch.row_count)}
    if inputs.labels is not None:
        merged = scores.merge(inputs.labels, on=keys, how="inner")
        values["labeled_rows"] = float(len(merged))
        values["label_coverage"] = len(merged) / inputs.batch.row_count if inputs.batch.row_count else None
        if inputs.task == "classifier":
            y_score = merged["probability"] if "probability" in merged.columns else None
            values.update(classification_metrics(merged["label"].astype("int64"),
                                                 merged["prediction"].round().astype("int64"), y_score))
        else:
            values.update(regression_metrics(merged["label"], merged["prediction"]))
    column = "probability" if "probability" in scores.columns and "probability" in reference_scores.columns \
        else "prediction"
    values["prediction_psi"] = psi(reference_scores[column], scores[column])
    for name in feature_columns:
        if name in reference_features.columns and name in inputs.current_features.columns:
            values[FEATURE_PSI_PREFIX + name] = psi(reference_features[name], inputs.current_features[name])
    return values


def _reference(spark: SparkSession, config: Config, inputs: BatchInputs, spec: TrainingSetSpec,
               model: Any) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The batch entities' features as the model was trained on them, and the model's scores on them."""
    keys = inputs.batch.frame.select(*inputs.batch.keys).distinct()
    reference = batch_data.to_pandas_sample(
        batch_data.entity_features(spark, config, keys, spec, as_trained=True), inputs.batch.row_count)
    return reference, batch_data.model_outputs(model, reference, spec.feature_columns)


def check_production(spark: SparkSession, config: Config, inputs: BatchInputs,
                     thresholds: Mapping[str, Threshold]) -> CheckResult:
    """Check the version that scored the batch, on its stored predictions."""
    batch = inputs.batch
    model = batch_data.load_sklearn_model(config, batch.model_name, batch.model_version)
    reference, reference_scores = _reference(spark, config, inputs, batch.spec, model)
    scores = batch_data.to_pandas_sample(batch.frame, batch.row_count)
    values = metric_values(inputs, scores, reference, reference_scores, batch.spec.feature_columns)
    result = CheckResult(batch.model_name, batch.model_version, batch.batch_id, "production",
                         check_values(values, thresholds))
    logger.info("model %s version %d on batch %s: %s", batch.model_name, batch.model_version, batch.batch_id,
                result.summary())
    return result


def check_candidate(spark: SparkSession, config: Config, inputs: BatchInputs, thresholds: Mapping[str, Threshold],
                    version: int, spec: TrainingSetSpec) -> CheckResult:
    """Check a retrained version by scoring the batch's entities with it in memory."""
    batch = inputs.batch
    model = batch_data.load_sklearn_model(config, batch.model_name, version)
    columns = spec.feature_columns
    missing = [c for c in columns if c not in inputs.current_features.columns]
    current = inputs.current_features
    if missing:  # the candidate uses features the production model did not: look them up
        keys = batch.frame.select(*batch.keys).distinct()
        current = batch_data.to_pandas_sample(
            batch_data.entity_features(spark, config, keys, spec, as_trained=False), batch.row_count)
    scores = pd.concat([current[batch.keys].reset_index(drop=True),
                        batch_data.model_outputs(model, current, columns).reset_index(drop=True)], axis=1)
    reference, reference_scores = _reference(spark, config, inputs, spec, model)
    values = metric_values(inputs, scores, reference, reference_scores, columns)
    result = CheckResult(batch.model_name, version, batch.batch_id, "candidate", check_values(values, thresholds))
    logger.info("candidate %s version %d on batch %s: %s", batch.model_name, version, batch.batch_id,
                result.summary())
    return result
