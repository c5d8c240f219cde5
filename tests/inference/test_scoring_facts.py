"""What load_scoring_model learns about a model: probability column or not, and the UDF's output type."""

from __future__ import annotations

from pathlib import Path

import pytest
from inference_support import get_registry, log_model, training_frame

from inference.model_reference import resolve_model
from inference.tracking import client as mlflow_client
from inference.scoring import load_scoring_model
from inference.scoring_model import PROBABILITY_METADATA


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    return get_registry(tmp_path_factory)


def _load(registry, name: str, version: int, tmp_path, with_probability: bool = True):
    return load_scoring_model(resolve_model(registry.config, f"models:/{name}/{version}"),
                              with_probability=with_probability, work_dir=str(tmp_path))


def test_a_classifier_logged_without_the_record_is_found_out_by_loading_it(registry, tmp_path):
    model = _load(registry, "lr_model", 1, tmp_path)
    assert (model.has_probability, model.prediction_type, model.output_type) == (True, "double", "double")  # a tensor output: double
    # Scored by this interpreter: no requirements for MLflow to check in every Python worker.
    assert not (Path(model.udf_path) / "requirements.txt").exists() and (Path(model.udf_path) / "MLmodel").exists()
    assert not _load(registry, "lr_model", 1, tmp_path / "no_proba", with_probability=False).has_probability


def test_a_regressor_gets_no_probability(registry, tmp_path):
    from sklearn.linear_model import LinearRegression

    X, y = training_frame(5)
    mlflow_client(registry.config).create_registered_model("facts_regressor")
    _, version = log_model(registry.config, "facts_regressor", LinearRegression().fit(X, y.astype(float)), X)
    model = _load(registry, "facts_regressor", version, tmp_path)
    assert (model.has_probability, model.prediction_type, model.output_type) == (False, "double", "double")


def test_the_recorded_fact_is_used_instead_of_loading_the_model(registry, tmp_path):
    from sklearn.linear_model import LogisticRegression

    X, y = training_frame(6)
    mlflow_client(registry.config).create_registered_model("facts_recorded")
    # A deliberately false record: only a scorer that trusts it (and does not load the model) says False.
    _, version = log_model(registry.config, "facts_recorded", LogisticRegression().fit(X, y), X,
                           metadata={PROBABILITY_METADATA: False})
    assert not _load(registry, "facts_recorded", version, tmp_path).has_probability


def test_training_records_whether_the_model_gives_probabilities(registry):
    import mlflow
    from mlflow.models import Model
    from sklearn.linear_model import LinearRegression, LogisticRegression

    from inference.training import _log_model

    X, y = training_frame(7)
    mlflow_client(registry.config)
    recorded = {}
    for estimator, target in ((LogisticRegression(), y), (LinearRegression(), y.astype(float))):
        with mlflow.start_run(experiment_id=mlflow.get_experiment_by_name("inference-tests").experiment_id):
            info = _log_model(estimator.fit(X, target), X)
        meta = Model.load(info.model_uri)
        recorded[type(estimator).__name__] = meta.metadata[PROBABILITY_METADATA]
    assert recorded == {"LogisticRegression": True, "LinearRegression": False}
