"""The loop's decision rules, without Spark: when does a candidate replace the checked version."""

from __future__ import annotations

from featurestore.core.config import Config
from inference.monitoring.check import CheckResult
from inference.monitoring.loop import _attempt_config, _judge, improves
from inference.monitoring.metrics import check_values, parse_thresholds
from inference.settings import TRAINING

THRESHOLDS = parse_thresholds({"auc": ">= 0.7", "feature_psi": "<= 0.25"})


def _check(version, role, **values):
    return CheckResult("churn", version, "b1", role, check_values(values, THRESHOLDS))


def test_candidate_in_range_and_better_may_replace():
    checked = _check(1, "production", auc=0.55, **{"feature_psi.age": 0.1})
    candidate = _check(2, "candidate", auc=0.8, **{"feature_psi.age": 0.1})
    assert improves(checked.out_of_range[0], candidate)
    assert _judge(checked, candidate) is None


def test_candidate_still_out_of_range_is_rejected():
    checked = _check(1, "production", auc=0.55)
    candidate = _check(2, "candidate", auc=0.65)
    assert _judge(checked, candidate) == "candidate still out of range: auc 0.65 not >= 0.7"


def test_lower_psi_is_an_improvement_and_equal_is_not():
    checked = _check(1, "production", auc=0.9, **{"feature_psi.age": 0.6})
    assert improves(checked.out_of_range[0], _check(2, "candidate", auc=0.9, **{"feature_psi.age": 0.01}))
    same = _check(3, "candidate", auc=0.9, **{"feature_psi.age": 0.6})
    assert not improves(checked.out_of_range[0], same)
    assert _judge(checked, same).startswith("candidate still out of range")


def test_each_attempt_uses_another_split_seed():
    config = Config()
    seed = TRAINING.of(config).seed
    assert [TRAINING.of(_attempt_config(config, n)).seed for n in (1, 2, 3)] == [seed, seed + 1, seed + 2]
    assert TRAINING.of(config).seed == TRAINING.of(Config()).seed
