"""Promotion thresholds: parsing and checking (no Spark, no MLflow)."""

from __future__ import annotations

import math

import pytest

from featurestore.core.config import load_config
from featurestore.core.errors import BadInputError
from inference.comparison import Threshold
from inference.estimators import load_estimator, parse_params
from inference.promotion import check_thresholds, parse_thresholds
from inference.settings import PROMOTION, SECTIONS, TRAINING, TrainingSettings


def test_parse_thresholds():
    assert parse_thresholds({"roc_auc": ">= 0.7", "log_loss": "<0.5", "f1_score": "0.3"}) == [
        Threshold("roc_auc", ">=", 0.7), Threshold("log_loss", "<", 0.5), Threshold("f1_score", ">=", 0.3)]


@pytest.mark.parametrize("text", ["high", ">= x", "=> 0.7", ""])
def test_bad_threshold_names_the_metric(text):
    with pytest.raises(BadInputError, match="roc_auc"):
        parse_thresholds({"roc_auc": text})


def test_check_thresholds_pass_fail_missing_nan():
    checks = check_thresholds({"roc_auc": 0.8, "log_loss": 0.6, "f1_score": math.nan},
                              {"roc_auc": ">= 0.7", "log_loss": "<= 0.5", "f1_score": ">= 0", "recall": "> 0"})
    assert [(c.metric, c.passed) for c in checks] == [("roc_auc", True), ("log_loss", False),
                                                       ("f1_score", False), ("recall", False)]


def test_training_and_promotion_sections_load_from_yaml(tmp_path):
    path = tmp_path / "featurelake.yaml"
    path.write_text(
        "training:\n"
        "  labels_path: raw/labels.parquet\n"
        "  estimator: sklearn.ensemble.RandomForestClassifier\n"
        "  estimator_params: {n_estimators: 10, max_depth: 'null'}\n"
        "  lookups:\n"
        "    - {table: t1, features: [a, b], timestamp_lookup_key: ts, ttl_seconds: 3600}\n"
        "promotion:\n"
        "  thresholds: {roc_auc: '>= 0.7'}\n"
        "  min_improvement: 0.01\n", encoding="utf-8")
    config = load_config(path, env={"FEATURELAKE_PROMOTION_METRIC": "f1_score"}, sections=SECTIONS)
    training, promotion = TRAINING.of(config), PROMOTION.of(config)
    assert training.labels_path == str(tmp_path / "raw" / "labels.parquet")
    assert training.lookups[0].table == "t1" and training.lookups[0].ttl_seconds == 3600
    assert promotion.metric == "f1_score" and promotion.min_improvement == 0.01
    estimator = load_estimator(training.estimator, parse_params(training.estimator_params))
    assert estimator.n_estimators == 10 and estimator.max_depth is None


def test_unknown_training_key_is_refused(tmp_path):
    path = tmp_path / "featurelake.yaml"
    path.write_text("training:\n  lookups:\n    - {table: t1, feature: [a]}\n", encoding="utf-8")
    with pytest.raises(BadInputError, match="feature"):
        load_config(path, env={}, sections=SECTIONS)


@pytest.mark.parametrize("path, params, words", [
    ("LogisticRegression", {}, ["LogisticRegression"]),
    ("sklearn.linear_model.NoSuchModel", {}, ["NoSuchModel"]),
    ("sklearn.linear_model.LogisticRegression", {"bogus": 1}, ["bogus"]),
    ("sklearn.linear_model.LogisticRegression", {"C": "high"}, ["LogisticRegression", "'C'", "'high'"]),
])
def test_bad_estimators(path, params, words):
    with pytest.raises(BadInputError) as info:
        load_estimator(path, params)
    for word in words:
        assert word in str(info.value)


def test_numbers_in_scientific_notation_reach_the_estimator_as_numbers():
    params = parse_params({"C": "1e3", "tol": "1e-4", "max_iter": "500", "penalty": "l2", "class_weight": "null"})
    assert params == {"C": 1000.0, "tol": 0.0001, "max_iter": 500, "penalty": "l2", "class_weight": None}
    estimator = load_estimator("sklearn.linear_model.LogisticRegression", params)
    assert (estimator.C, estimator.tol) == (1000.0, 0.0001)


def test_the_training_seed_seeds_an_estimator_that_takes_one_unless_its_parameters_do():
    from inference.training import seeded_estimator

    forest = TrainingSettings(estimator="sklearn.ensemble.RandomForestClassifier", seed=7)
    assert seeded_estimator(forest).random_state == 7
    forest.estimator_params = {"random_state": "3"}
    assert seeded_estimator(forest).random_state == 3
    assert not hasattr(seeded_estimator(TrainingSettings(estimator="sklearn.naive_bayes.GaussianNB")), "random_state")
