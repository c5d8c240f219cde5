"""The training-set spec logged with a model's run comes back as a TrainingSetSpec (batch scoring,
monitoring and the report all read it through inference.tracking.load_spec)."""

from __future__ import annotations

import json

import mlflow
import pytest

from featurestore.core.config import Config, resolve_paths
from featurestore.core.errors import BadInputError, NotFoundError
from featurestore.training_set import SPEC_ARTIFACT, FeatureLookup, TrainingSetSpec
from inference.batch import default_kept_columns
from inference.tracking import configure_mlflow, load_spec

# As training wrote it before this change (and still does).
LOGGED = {"label": "churned", "timestamp_key": "label_time", "entity_keys": ["customer_id"],
          "feature_columns": ["age"],
          "lookups": [{"table": "customer_profile", "path": "/w/customer_profile", "features": ["age"],
                       "lookup_keys": ["customer_id"], "timestamp_lookup_key": "label_time",
                       "ttl_seconds": 3600, "delta_version": 4}]}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A SQLite MLflow store with three runs: a spec, a corrupt spec, no spec."""
    config = Config()
    config.mlflow.tracking_uri = "sqlite:///mlflow.db"
    config = resolve_paths(config, tmp_path_factory.mktemp("specs"))
    configure_mlflow(config)
    ids = {}
    for name, text in (("spec", json.dumps(LOGGED)), ("corrupt", "[1, 2"), ("none", None)):
        with mlflow.start_run() as run:
            if text is not None:
                mlflow.log_text(text, SPEC_ARTIFACT)
        ids[name] = run.info.run_id
    return config, ids


def test_a_logged_spec_is_a_training_set_spec(runs):
    config, ids = runs
    spec = load_spec(ids["spec"], config)
    assert spec == TrainingSetSpec.from_dict(LOGGED)
    assert spec.delta_versions() == {"customer_profile": 4}
    assert [(x.table, x.ttl.total_seconds()) for x in spec.feature_lookups()] == [("customer_profile", 3600.0)]


def test_a_missing_or_corrupt_spec_is_named(runs):
    config, ids = runs
    with pytest.raises(NotFoundError, match=f"no training-set spec for MLflow run '{ids['none']}'"):
        load_spec(ids["none"], config)
    with pytest.raises(BadInputError, match=f"training-set spec of MLflow run '{ids['corrupt']}' cannot be read"):
        load_spec(ids["corrupt"], config)


def test_batch_scoring_keeps_the_specs_keys_and_timestamp(spark):
    spec = TrainingSetSpec.from_dict(LOGGED)
    with_time = spark.createDataFrame([(1, "2026-01-01")], "customer_id bigint, label_time string")
    assert default_kept_columns(spec, with_time) == ["customer_id", "label_time"]
    assert default_kept_columns(spec, with_time.drop("label_time")) == ["customer_id"]
    assert default_kept_columns(None, with_time) == []
    assert isinstance(spec.feature_lookups()[0], FeatureLookup)
