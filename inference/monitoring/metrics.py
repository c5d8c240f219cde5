"""Model metrics for one batch: quality where labels arrived, drift (PSI), row counts, thresholds.

Everything here works on plain numpy/pandas values, so it is cheap to test; reading the
batch from Delta is :mod:`inference.monitoring.batch_data`'s job.

Thresholds are configured per metric as a comparison with a number::

    monitoring:
      thresholds:
        auc: ">= 0.70"              # quality, needs labels
        prediction_psi: "<= 0.2"    # drift of the prediction against the training data
        feature_psi: "<= 0.25"      # every feature's PSI ...
        feature_psi.age: "<= 0.5"   # ... unless it has its own threshold
        row_count: "> 0"
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from featurestore.core.errors import BadInputError
from inference.comparison import Threshold, parse_threshold as parse_comparison

logger = logging.getLogger(__name__)

CLASSIFICATION_METRICS = ("accuracy", "auc", "f1")
REGRESSION_METRICS = ("rmse", "mae", "r2")
QUALITY_METRICS = CLASSIFICATION_METRICS + REGRESSION_METRICS
COUNT_METRICS = ("row_count", "labeled_rows", "label_coverage")
DRIFT_METRICS = ("prediction_psi", "feature_psi")
KNOWN_METRICS = QUALITY_METRICS + COUNT_METRICS + DRIFT_METRICS
FEATURE_PSI_PREFIX = "feature_psi."
# Lower is better for errors and drift (feature_psi.<feature> too); higher for everything else.
LOWER_IS_BETTER = ("rmse", "mae", "prediction_psi", "feature_psi")
PSI_EPSILON = 1e-4


@dataclass(frozen=True)
class MetricValue:
    """One metric of one batch, checked against its threshold (if it has one)."""

    metric: str
    value: float
    threshold: Threshold | None

    @property
    def in_range(self) -> bool | None:
        """True/False when a threshold applies, None when the metric is only recorded."""
        return None if self.threshold is None else self.threshold.accepts(self.value)


def parse_threshold(metric: str, text: object) -> Threshold:
    """Parse ``">= 0.7"`` for ``metric`` (:func:`inference.comparison.parse_threshold`, no bare number).

    Raises:
        BadInputError: unknown metric name, or a threshold that is not ``<op> <number>``.
    """
    base = metric[len(FEATURE_PSI_PREFIX):] if metric.startswith(FEATURE_PSI_PREFIX) else None
    if metric not in KNOWN_METRICS and not base:
        raise BadInputError(f"monitoring.thresholds: unknown metric {metric!r} "
                            f"(known: {', '.join(KNOWN_METRICS)}, or feature_psi.<feature>)")
    return parse_comparison(metric, text, "monitoring.thresholds")


def higher_is_better(metric: str) -> bool:
    """Which direction of ``metric`` is better: lower for errors and drift, higher otherwise.

    >>> higher_is_better("auc"), higher_is_better("feature_psi.age")
    (True, False)
    """
    return not metric.startswith(LOWER_IS_BETTER)


def parse_thresholds(raw: Mapping[str, object]) -> dict[str, Threshold]:
    """Parse the configured thresholds; at least one metric must be configured.

    Raises:
        BadInputError: none configured, or one of them is invalid.
    """
    if not raw:
        raise BadInputError("no metrics configured: set monitoring.thresholds in the configuration, "
                            "for example {auc: '>= 0.7', prediction_psi: '<= 0.2'}")
    return {metric: parse_threshold(metric, text) for metric, text in raw.items()}


def threshold_for(metric: str, thresholds: Mapping[str, Threshold]) -> Threshold | None:
    """The threshold that applies to ``metric`` (``feature_psi.x`` falls back to ``feature_psi``)."""
    if metric in thresholds:
        return thresholds[metric]
    if metric.startswith(FEATURE_PSI_PREFIX) and "feature_psi" in thresholds:
        t = thresholds["feature_psi"]
        return Threshold(metric, t.op, t.bound)
    return None


def check_values(values: Mapping[str, float | None], thresholds: Mapping[str, Threshold]) -> list[MetricValue]:
    """Pair each computed metric with its threshold; metrics that could not be computed are left out,
    with a warning for those that have a threshold (it is not checked)."""
    computed = {m: v for m, v in values.items() if v is not None and math.isfinite(v)}
    unchecked = [m for m in values if m not in computed and threshold_for(m, thresholds) is not None]
    if unchecked:
        logger.warning("metric(s) %s could not be computed for this batch (auc needs labels of both classes "
                       "and a probability column): their thresholds are not checked", ", ".join(unchecked))
    return [MetricValue(metric, float(value), threshold_for(metric, thresholds)) for metric, value in computed.items()]


def classification_metrics(y_true: Sequence, y_pred: Sequence, y_score: Sequence | None) -> dict[str, float | None]:
    """Accuracy, F1 (binary: positive class 1; else macro) and ROC AUC (None when one class only)."""
    from sklearn.metrics import accuracy_score, f1_score, roc_auc_score

    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred)
    if len(y_true) == 0:
        return {"accuracy": None, "auc": None, "f1": None}
    classes = np.unique(np.concatenate([y_true, y_pred]))
    binary = len(classes) <= 2 and set(classes.tolist()) <= {0, 1}
    auc = None
    if y_score is not None and binary and len(np.unique(y_true)) == 2:
        scores = np.asarray(y_score, dtype=float)
        if not np.isnan(scores).any():
            auc = float(roc_auc_score(y_true, scores))
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "auc": auc,
        "f1": float(f1_score(y_true, y_pred, average="binary" if binary else "macro", zero_division=0)),
    }


def regression_metrics(y_true: Sequence, y_pred: Sequence) -> dict[str, float | None]:
    """RMSE, MAE and R2 (R2 None for fewer than two rows or a constant target)."""
    y_true = np.asarray(y_true, dtype=float)
    y_pred = np.asarray(y_pred, dtype=float)
    if len(y_true) == 0:
        return {"rmse": None, "mae": None, "r2": None}
    errors = y_pred - y_true
    total = float(((y_true - y_true.mean()) ** 2).sum())
    return {
        "rmse": float(np.sqrt((errors ** 2).mean())),
        "mae": float(np.abs(errors).mean()),
        "r2": None if len(y_true) < 2 or total == 0.0 else float(1.0 - (errors ** 2).sum() / total),
    }


def psi(reference: Sequence, current: Sequence, bins: int = 10) -> float | None:
    """Population stability index of ``current`` against ``reference``.

    Numeric values are cut at the reference's quantiles (``bins`` bins, open-ended at both
    sides); other values are compared category by category. Missing values form their own
    bin. Empty proportions are floored at 1e-4. None when either side is empty.
    Rule of thumb: < 0.1 stable, 0.1-0.25 moderate shift, > 0.25 large shift.
    """
    ref = pd.Series(reference)
    cur = pd.Series(current)
    if ref.empty or cur.empty:
        return None
    if pd.api.types.is_numeric_dtype(ref) and pd.api.types.is_numeric_dtype(cur):
        ref_values = ref.astype(float)
        cur_values = cur.astype(float)
        finite = ref_values.dropna()
        edges = np.unique(np.quantile(finite, np.linspace(0, 1, bins + 1)[1:-1])) if len(finite) else np.array([])
        ref_bins = _bin(ref_values, edges)
        cur_bins = _bin(cur_values, edges)
    else:
        ref_bins = ref.astype("string").fillna("<missing>")
        cur_bins = cur.astype("string").fillna("<missing>")
    labels = sorted(set(ref_bins.unique()) | set(cur_bins.unique()), key=str)
    p = ref_bins.value_counts(normalize=True).reindex(labels, fill_value=0.0).to_numpy()
    q = cur_bins.value_counts(normalize=True).reindex(labels, fill_value=0.0).to_numpy()
    p = np.clip(p, PSI_EPSILON, None)
    q = np.clip(q, PSI_EPSILON, None)
    return float(((q - p) * np.log(q / p)).sum())


def _bin(values: pd.Series, edges: np.ndarray) -> pd.Series:
    """Bin index per value (``searchsorted`` on the edges), -1 for missing values."""
    out = np.searchsorted(edges, values.to_numpy(), side="right").astype("int64")
    out[values.isna().to_numpy()] = -1
    return pd.Series(out)
