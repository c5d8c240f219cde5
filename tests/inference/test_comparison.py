"""One threshold grammar for the promotion gates, the monitoring thresholds and the report's
charts, and one rule for which of two values is better (inference.comparison)."""

from __future__ import annotations

import pytest

from featurestore.core.errors import BadInputError
from inference.comparison import Threshold, improvement, parse_threshold
from inference.monitoring.metrics import parse_threshold as monitoring_threshold
from inference.promotion import parse_thresholds as promotion_thresholds
from inference.report.charts import stored_threshold


@pytest.mark.parametrize("text, expected", [
    (">= 0.7", Threshold("auc", ">=", 0.7)),
    ("<.25", Threshold("auc", "<", 0.25)),
    ("  > 1e-3 ", Threshold("auc", ">", 0.001)),
    ("<= 1.", Threshold("auc", "<=", 1.0)),
    ("> -2", Threshold("auc", ">", -2.0)),
])
def test_promotion_monitoring_and_report_read_a_threshold_alike(text, expected):
    assert monitoring_threshold("auc", text) == expected
    assert promotion_thresholds({"auc": text}) == [expected]
    assert stored_threshold("auc", text) == expected


@pytest.mark.parametrize("text", ["high", "=> 0.7", ">= seven", "", ">= 0.7 or so", ">= nan", ">= 1e999", None])
def test_promotion_monitoring_and_report_refuse_the_same_texts(text):
    with pytest.raises(BadInputError, match="^monitoring.thresholds.auc: "):
        monitoring_threshold("auc", text)
    with pytest.raises(BadInputError, match="^promotion.thresholds.auc: "):
        promotion_thresholds({"auc": text})
    assert stored_threshold("auc", text) is None


def test_a_bare_number_means_at_least_for_a_promotion_gate_only():
    assert promotion_thresholds({"roc_auc": "0.6", "f1_score": 0.5}) == [
        Threshold("roc_auc", ">=", 0.6), Threshold("f1_score", ">=", 0.5)]
    with pytest.raises(BadInputError, match="cannot be compared"):
        parse_threshold("auc", "0.6", "monitoring.thresholds")


def test_a_threshold_accepts_its_range_and_prints_as_written():
    threshold = parse_threshold("rmse", "< 1e3", "monitoring.thresholds")
    assert threshold.accepts(999.0) and not threshold.accepts(1000.0)
    assert str(threshold) == "< 1000"


def test_improvement_is_positive_when_better_in_the_metrics_direction():
    assert improvement(0.8, 0.7, higher_is_better=True) == pytest.approx(0.1)
    assert improvement(0.2, 0.3, higher_is_better=False) == pytest.approx(0.1)
    assert improvement(0.7, 0.7, higher_is_better=True) == 0.0
    assert improvement(0.3, 0.2, higher_is_better=False) < 0
