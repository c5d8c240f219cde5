"""The scoring wrapper evaluates a forest once for prediction and probability, with unchanged results."""

from __future__ import annotations

import mlflow
import numpy as np
import pandas as pd
import pytest
from inference_support import get_registry, log_model, training_frame
from mlflow.pyfunc import PythonModelContext
from sklearn.ensemble import ExtraTreesClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from inference import scoring_model
from inference.batch import run_batch_inference
from inference.tracking import client as mlflow_client

DOUBLES = ["x1", "x2", "x3"]


class AllZerosForest(RandomForestClassifier):
    """A forest whose ``predict`` is not the argmax of ``predict_proba``."""

    def predict(self, X):  # noqa: ANN001, ANN201
        return np.zeros(len(X), dtype="int64")


def _wrapper(tmp_path, model, with_probability: bool = True) -> scoring_model.CachedModel:
    path = tmp_path / "model"
    mlflow.sklearn.save_model(model, str(path), serialization_format="pickle")
    wrapper = scoring_model.CachedModel("sklearn", with_probability)
    wrapper.load_context(PythonModelContext(artifacts={scoring_model.MODEL_ARTIFACT: str(path)}, model_config={}))
    return wrapper


@pytest.mark.parametrize("model, forest", [
    (RandomForestClassifier(n_estimators=15, random_state=0), True),
    (ExtraTreesClassifier(n_estimators=15, random_state=0), True),
    (make_pipeline(StandardScaler(), RandomForestClassifier(n_estimators=15, random_state=0)), True),
    (AllZerosForest(n_estimators=15, random_state=0), False),
    (LogisticRegression(), False),
    (make_pipeline(StandardScaler(), LogisticRegression()), False),
])
def test_wrapper_output_equals_the_models_own_predict_and_predict_proba(tmp_path, model, forest):
    X, y = training_frame(seed=6)
    model.fit(X[DOUBLES], y)
    rows = training_frame(seed=7, rows=300)[0][DOUBLES]
    wrapper = _wrapper(tmp_path, model)
    assert scoring_model.is_forest_classifier(model) is forest
    out = wrapper.predict(None, rows)
    assert out["prediction"].tolist() == model.predict(rows).tolist()
    assert out["probability"].tolist() == model.predict_proba(rows)[:, 1].tolist()
    assert _wrapper(tmp_path / "plain", model, with_probability=False).predict(None, rows).tolist() == \
        model.predict(rows).tolist()


class CountingScaler(StandardScaler):
    """A scaler that counts its ``transform`` calls."""

    calls = 0

    def transform(self, X, copy=None):  # noqa: ANN001, ANN201
        CountingScaler.calls += 1
        return super().transform(X, copy=copy)


def test_a_pipeline_runs_its_preprocessing_once_for_prediction_and_probability():
    X, y = training_frame(seed=12)
    model = make_pipeline(CountingScaler(), LogisticRegression()).fit(X[DOUBLES], y)
    rows = training_frame(seed=13, rows=50)[0][DOUBLES]
    expected = model.predict(rows).tolist(), model.predict_proba(rows).tolist()
    CountingScaler.calls = 0
    prediction, proba = scoring_model.predict_with_proba(model, rows)
    assert CountingScaler.calls == 1
    assert (prediction.tolist(), proba.tolist()) == expected


def test_forest_scored_through_spark_equals_predict_and_predict_proba(spark, tmp_path_factory):
    registry = get_registry(tmp_path_factory)
    X, y = training_frame(seed=8)
    forest = RandomForestClassifier(n_estimators=25, max_depth=6, random_state=0).fit(X[DOUBLES], y)
    mlflow_client(registry.config).create_registered_model("rf_outputs")
    _, version = log_model(registry.config, "rf_outputs", forest, X[DOUBLES])
    rows = training_frame(seed=9, rows=120)[0][DOUBLES]
    rows.insert(0, "id", np.arange(len(rows), dtype="int64"))

    result = run_batch_inference(spark, registry.config, spark.createDataFrame(rows), f"models:/rf_outputs/{version}",
                                 keys=["id"], output_table="rf_outputs_predictions", batch_id="b1")
    out = spark.read.format("delta").load(result.output_path).toPandas().sort_values("id")
    assert out["prediction"].tolist() == forest.predict(rows[DOUBLES]).astype("float64").tolist()
    assert out["probability"].tolist() == forest.predict_proba(rows[DOUBLES])[:, 1].tolist()


def test_only_a_bare_forest_gets_row_major_float32_input():
    X, y = training_frame(seed=10)
    rows = training_frame(seed=11, rows=50)[0][DOUBLES]
    forest = RandomForestClassifier(n_estimators=5, random_state=0).fit(X[DOUBLES], y)
    converted = scoring_model.row_major_input(forest, rows)
    values = converted.to_numpy()
    assert values.dtype == np.float32 and values.flags["C_CONTIGUOUS"]
    assert converted.columns.tolist() == DOUBLES and converted.index.equals(rows.index)
    assert np.array_equal(values, rows.to_numpy(dtype=np.float32))
    pipeline = make_pipeline(StandardScaler(), RandomForestClassifier(n_estimators=5, random_state=0)).fit(X[DOUBLES], y)
    for model in (pipeline, LogisticRegression().fit(X[DOUBLES], y)):
        assert scoring_model.row_major_input(model, rows) is rows


def test_row_major_input_turns_missing_values_into_nan_as_the_forest_does():
    X, y = training_frame(seed=12)
    forest = RandomForestClassifier(n_estimators=5, random_state=0).fit(X[DOUBLES], y)
    rows = training_frame(seed=13, rows=4)[0][DOUBLES].reset_index(drop=True)
    rows["x1"] = pd.array([1, None, 3, None], dtype="Int64")  # a nullable column with pd.NA
    values = scoring_model.row_major_input(forest, rows).to_numpy()
    assert np.isnan(values[[1, 3], 0]).all() and values[0, 0] == 1.0
    assert scoring_model.predict(forest, rows).tolist() == forest.predict(rows.astype("float64")).tolist()
