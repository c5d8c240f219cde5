"""The training, promotion and monitoring sections, defined by inference.settings: the same file
and keys as before they moved out of the core, and no demo defaults (no Spark needed)."""

from __future__ import annotations

import pytest

from featurestore.core.config import Config, load_config, write_config
from featurestore.core.errors import BadInputError
from inference.settings import (
    MONITORING, PROMOTION, SECTIONS, TRAINING, LookupSettings, configured_label, configured_model_name,
)

# The three sections as the demo wrote them before they moved out of featurestore/core/config.py.
WRITTEN_BEFORE_THE_MOVE = """\
warehouse: warehouse
training:
  model_name: churn_model
  labels_path: raw/churn_labels.parquet
  label: churned
  lookups:
  - table: customer_profile
    features: [age, tenure_days]
    lookup_keys: null
    timestamp_lookup_key: label_time
    ttl_seconds: null
  drop_missing: false
  task: classifier
  estimator: sklearn.linear_model.LogisticRegression
  estimator_params: {C: '1.0', max_iter: '500'}
  test_fraction: 0.25
  seed: 42
  description: Churn propensity
  tags: {team: customer-analytics, demo: 'true'}
  source_url: https://example.com/demo/lifecycle.py
promotion:
  metric: roc_auc
  greater_is_better: true
  min_improvement: 0.0
  thresholds: {roc_auc: '>= 0.6'}
  events_table: promotion_events
monitoring:
  thresholds: {auc: '>= 0.7', feature_psi: <= 0.25, row_count: '> 0'}
  max_attempts: 3
  webhook_url: null
  predictions_table: predictions
"""


def test_a_file_written_before_the_move_loads_the_same(tmp_path):
    path = tmp_path / "featurelake.yaml"
    path.write_text(WRITTEN_BEFORE_THE_MOVE)
    config = load_config(path, env={"FEATURELAKE_MONITORING_MAX_ATTEMPTS": "5"}, sections=SECTIONS)
    training = TRAINING.of(config)
    assert (training.model_name, training.label, training.seed) == ("churn_model", "churned", 42)
    assert training.labels_path == str(tmp_path / "raw" / "churn_labels.parquet")
    assert training.lookups == [LookupSettings("customer_profile", ["age", "tenure_days"], None, "label_time", None)]
    assert PROMOTION.of(config).thresholds == {"roc_auc": ">= 0.6"}
    assert MONITORING.of(config).max_attempts == 5
    assert MONITORING.of(config).thresholds == {"auc": ">= 0.7", "feature_psi": "<= 0.25", "row_count": "> 0"}
    again = load_config(write_config(config, tmp_path / "again" / "featurelake.yaml"), env={}, sections=SECTIONS)
    assert TRAINING.of(again) == training and MONITORING.of(again) == MONITORING.of(config)


@pytest.mark.parametrize("text, message", [
    ("trainng:\n  seed: 1\n", "unknown configuration key\\(s\\): trainng"),
    ("training:\n  seed: one\n", "configuration training.seed: expected int"),
    ("monitoring:\n  max_attempts: [3]\n", "configuration monitoring.max_attempts: expected int"),
    ("promotion:\n  metrc: auc\n", "unknown configuration key\\(s\\) in section 'promotion': metrc"),
])
def test_a_bad_inference_section_is_refused_at_load(tmp_path, text, message):
    path = tmp_path / "featurelake.yaml"
    path.write_text(text)
    with pytest.raises(BadInputError, match=message):
        load_config(path, env={}, sections=SECTIONS)


def test_the_demos_model_name_and_label_are_not_library_defaults():
    config = Config()
    with pytest.raises(BadInputError, match="^training.model_name is not set"):
        configured_model_name(config)
    with pytest.raises(BadInputError, match="^training.label is not set"):
        configured_label(config)
    TRAINING.of(config).model_name, TRAINING.of(config).label = "my_model", "target"
    assert (configured_model_name(config), configured_label(config)) == ("my_model", "target")


def _no_spark(*args, **kwargs):
    raise AssertionError("the job started a Spark session although its configuration was incomplete")


@pytest.mark.parametrize("job, yaml_text, args, key", [
    ("train", "training: {label: y}\n", [], "training.model_name"),
    ("train", "training: {model_name: m}\n", [], "training.label"),
    ("train", "training: {}\n", ["--model-name", "m"], "training.label"),
    ("monitor", "monitoring: {thresholds: {auc: '>= 0.7'}}\n", ["--batch-id", "b1"], "training.model_name"),
])
def test_a_job_without_a_model_name_or_label_exits_2_naming_the_key_before_spark(
        tmp_path, monkeypatch, capfd, job, yaml_text, args, key):
    import importlib

    module = importlib.import_module(f"jobs.{job}")
    monkeypatch.setattr(module, "start_spark", _no_spark)
    path = tmp_path / "featurelake.yaml"
    path.write_text(f"warehouse: {tmp_path / 'w'}\n{yaml_text}")
    assert module.main(["--config", str(path), *args]) == 2
    assert f"BadInputError: {key} is not set" in capfd.readouterr().err


def test_train_model_without_a_model_name_names_the_key(spark, tmp_path):
    from inference.training import train_model

    with pytest.raises(BadInputError, match="^training.model_name is not set"):
        train_model(spark, Config(warehouse=str(tmp_path)))
