"""Quality metrics, PSI and thresholds of inference.monitoring.metrics."""

from __future__ import annotations

import numpy as np
import pytest

from featurestore.core.errors import BadInputError
from inference.monitoring.metrics import (
    check_values, classification_metrics, higher_is_better, parse_threshold, parse_thresholds, psi,
    regression_metrics, threshold_for,
)


def test_classification_metrics_match_hand_computed_values():
    y_true = [0, 0, 1, 1]
    y_pred = [0, 1, 1, 1]
    y_score = [0.1, 0.6, 0.7, 0.9]
    m = classification_metrics(y_true, y_pred, y_score)
    assert m["accuracy"] == pytest.approx(0.75)
    assert m["f1"] == pytest.approx(0.8)          # precision 2/3, recall 1
    assert m["auc"] == pytest.approx(1.0)          # every positive scores above every negative


def test_auc_is_none_with_one_class_only():
    m = classification_metrics([1, 1, 1], [1, 0, 1], [0.9, 0.2, 0.8])
    assert m["auc"] is None and m["accuracy"] == pytest.approx(2 / 3)


def test_regression_metrics():
    m = regression_metrics([1.0, 2.0, 3.0], [1.0, 2.0, 5.0])
    assert m["mae"] == pytest.approx(2 / 3)
    assert m["rmse"] == pytest.approx(np.sqrt(4 / 3))
    assert m["r2"] == pytest.approx(1 - 4 / 2)
    assert regression_metrics([2.0, 2.0], [2.0, 3.0])["r2"] is None


def test_psi_is_zero_for_same_distribution_and_large_for_a_shift():
    rng = np.random.default_rng(0)
    reference = rng.normal(0, 1, 2000)
    assert psi(reference, reference) == pytest.approx(0.0, abs=1e-9)
    assert psi(reference, rng.normal(0, 1, 2000)) < 0.05
    assert psi(reference, rng.normal(2, 1, 2000)) > 1.0


def test_psi_of_categories_and_missing_values():
    assert psi(["DE", "FR"] * 50, ["DE", "FR"] * 50) == pytest.approx(0.0, abs=1e-9)
    assert psi(["DE", "FR"] * 50, ["ES"] * 100) > 1.0
    assert psi([1.0, 2.0, None, 4.0] * 25, [None] * 100) > 1.0
    assert psi([], [1.0]) is None


def test_thresholds_parse_and_check():
    t = parse_threshold("auc", ">= 0.7")
    assert (t.op, t.bound, str(t)) == (">=", 0.7, ">= 0.7")
    assert t.accepts(0.7) and not t.accepts(0.69)
    assert parse_threshold("feature_psi.age", "<.25").accepts(0.1)
    assert parse_threshold("rmse", "< 1e3").accepts(999.0)


@pytest.mark.parametrize("text", ["high", "0.7", "=> 0.7", ">= seven", "", None, ">= nan", ">= 0.7 or so"])
def test_thresholds_that_cannot_be_compared_are_refused(text):
    with pytest.raises(BadInputError, match="auc"):
        parse_threshold("auc", text)


def test_unknown_metric_and_no_metrics_are_refused():
    with pytest.raises(BadInputError, match="unknown metric 'acc'"):
        parse_thresholds({"acc": ">= 0.5"})
    with pytest.raises(BadInputError, match="no metrics configured"):
        parse_thresholds({})


def test_feature_psi_threshold_applies_to_every_feature_unless_overridden():
    thresholds = parse_thresholds({"feature_psi": "<= 0.2", "feature_psi.age": "<= 0.5", "auc": ">= 0.7"})
    assert str(threshold_for("feature_psi.spend_7d", thresholds)) == "<= 0.2"
    assert str(threshold_for("feature_psi.age", thresholds)) == "<= 0.5"
    assert threshold_for("row_count", thresholds) is None
    checked = {m.metric: m for m in check_values(
        {"auc": 0.65, "feature_psi.age": 0.4, "feature_psi.spend_7d": 0.4, "row_count": 10, "f1": None},
        thresholds)}
    assert set(checked) == {"auc", "feature_psi.age", "feature_psi.spend_7d", "row_count"}
    assert checked["auc"].in_range is False
    assert checked["feature_psi.age"].in_range is True
    assert checked["feature_psi.spend_7d"].in_range is False
    assert checked["row_count"].in_range is None


def test_each_metric_knows_which_direction_is_better():
    assert [m for m in ("accuracy", "auc", "f1", "r2", "row_count", "labeled_rows", "label_coverage")
            if not higher_is_better(m)] == []
    assert [m for m in ("rmse", "mae", "prediction_psi", "feature_psi", "feature_psi.age") if higher_is_better(m)] == []


def test_a_thresholded_metric_that_could_not_be_computed_is_named_in_a_warning(caplog):
    values = {**classification_metrics([1, 1, 1], [1, 0, 0], [0.9, 0.2, 0.4]), "row_count": 3.0}
    assert values["auc"] is None  # labels of one class only
    checked = check_values(values, parse_thresholds({"auc": ">= 0.7", "accuracy": ">= 0.5"}))
    assert sorted(m.metric for m in checked) == ["accuracy", "f1", "row_count"]
    assert [r.getMessage() for r in caplog.records if r.levelname == "WARNING"] == [
        "metric(s) auc could not be computed for this batch (auc needs labels of both classes and a probability "
        "column): their thresholds are not checked"]
