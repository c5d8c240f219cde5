"""A notebook session through the public client only: features computed with Spark, a LightGBM model
and a custom PythonModel of one's own, logged with their training set, one promoted, both scored
by keys and compared with the models' own predictions on the same rows.
"""

from __future__ import annotations

import sys
from datetime import datetime, timedelta

import cloudpickle
import lightgbm
import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient
from pyspark.sql import functions as F

from featurestore import FeatureLookup, FeatureStoreClient
from featurestore.core.errors import BadInputError
from tests.conftest import make_config

DAY0 = datetime(2026, 1, 1)
# A notebook's classes live in __main__ and are pickled with the model; so are this module's,
# which Spark's Python workers could not import by name.
cloudpickle.register_pickle_by_value(sys.modules[__name__])


class SpendPerVisit(mlflow.pyfunc.PythonModel):
    """A custom model: spend per visit, -1 where the customer has no feature row yet."""

    def predict(self, context, model_input, params=None):  # noqa: ANN001, ANN201 - MLflow's interface
        spend, visits = model_input["spend"].to_numpy(), model_input["visits"].to_numpy()
        return np.where(np.isnan(spend), -1.0, spend / (1.0 + np.nan_to_num(visits)))


def _events(spark, customers: int = 120, days: int = 8):
    rng = np.random.default_rng(27)
    rows = pd.DataFrame({
        "customer_id": rng.integers(0, customers, 4000).astype("int64"),
        "at": [DAY0 + timedelta(minutes=int(m)) for m in rng.integers(0, days * 24 * 60, 4000)],
        "amount": rng.gamma(2.0, 10.0, 4000).round(2),
    })
    late = (rows["customer_id"] >= 100) & (rows["at"] < DAY0 + timedelta(days=5))  # newer customers
    return spark.createDataFrame(rows[~late])


def _labels(spark, customers: int = 120):
    rng = np.random.default_rng(3)
    times = [DAY0 + timedelta(hours=int(h)) for h in rng.integers(0, 8 * 24, customers)]  # some before any feature
    return spark.createDataFrame(pd.DataFrame({"customer_id": np.arange(customers, dtype="int64"),
                                               "label_time": times}))


@pytest.fixture
def fs(spark, tmp_path) -> FeatureStoreClient:
    return FeatureStoreClient(make_config(tmp_path))  # adopts the active session


def test_own_dataframe_and_own_models_to_production_and_scores_by_keys(spark, fs):
    assert fs.spark is spark
    daily = (_events(spark).groupBy("customer_id", F.date_trunc("day", "at").alias("day"))
             .agg(F.round(F.sum("amount"), 2).alias("spend"), F.count(F.lit(1)).alias("visits")))
    fs.create_table("customer_daily", "customer_id", "day", df=daily, description="Spend and visits per day",
                    descriptions={"spend": "Spend that day", "visits": "Purchases that day"})

    spend = F.coalesce(F.col("spend"), F.lit(0.0))
    labelled = (fs.create_training_set(_labels(spark), [FeatureLookup("customer_daily", timestamp_lookup_key="label_time")],
                                       label=None).load_df()
                .withColumn("churned", (spend < 40).cast("int")).drop("spend", "visits"))
    ts = fs.create_training_set(labelled, [FeatureLookup("customer_daily", timestamp_lookup_key="label_time")],
                                label="churned", exclude_columns=["label_time"])
    assert ts.spec.feature_columns == ["spend", "visits"] and ts.spec.timestamp_key == "label_time"
    pdf = ts.load_df().toPandas()
    assert pdf["spend"].isna().any()  # labels before a customer's first feature row: features missing
    features = pdf[ts.spec.feature_columns].astype("float64")
    booster = lightgbm.LGBMClassifier(n_estimators=30, min_child_samples=5, verbose=-1).fit(features, pdf["churned"])

    with mlflow.start_run() as run:  # the user's own run: metrics and the model go together
        mlflow.log_metric("train_accuracy", float((booster.predict(features) == pdf["churned"]).mean()))
        logged = fs.log_model(booster, flavor=mlflow.lightgbm, training_set=ts, registered_model_name="churn_lgbm",
                              pip_requirements=["mlflow", "lightgbm"])
    custom = fs.log_model(SpendPerVisit(), flavor=mlflow.pyfunc, training_set=ts, registered_model_name="spend_per_visit",
                          pip_requirements=["mlflow"])
    assert (logged.run_id, logged.model_uri) == (run.info.run_id, "models:/churn_lgbm/1")
    assert custom.model_uri == "models:/spend_per_visit/1"
    inputs = mlflow.models.get_model_info(logged.model_uri).signature.inputs
    assert [(c.name, c.type.name, c.required) for c in inputs.inputs] == [("spend", "double", True),
                                                                         ("visits", "double", True)]
    MlflowClient().transition_model_version_stage("churn_lgbm", "1", "Production")

    # Keys and label times only: the features are looked up point in time, as in training.
    scored = fs.score_batch("models:/churn_lgbm/Production", labelled.select("customer_id", "label_time")).toPandas()
    scored = scored.set_index("customer_id").loc[pdf["customer_id"]]
    assert set(scored.columns) == {"label_time", "prediction", "probability", "model_name", "model_version", "run_id"}
    assert (scored["model_name"] == "churn_lgbm").all() and (scored["model_version"] == 1).all()
    assert (scored["run_id"] == logged.run_id).all()
    np.testing.assert_array_equal(scored["prediction"].to_numpy(), booster.predict(features).astype("float64"))
    np.testing.assert_array_equal(scored["probability"].to_numpy(), booster.predict_proba(features)[:, 1])

    # Keys only: the latest feature values; the custom model's own predict on those rows.
    latest = (fs.read_table("customer_daily").toPandas().sort_values("day").groupby("customer_id").last()
              [["spend", "visits"]].astype("float64"))
    keys = spark.createDataFrame(pd.DataFrame({"customer_id": np.arange(130, dtype="int64")}))  # 120..129 unknown
    by_keys = fs.score_batch(custom.model_uri, keys).toPandas().set_index("customer_id").sort_index()
    expected = SpendPerVisit().predict(None, latest.reindex(by_keys.index))
    np.testing.assert_array_equal(by_keys["prediction"].to_numpy(), expected)
    assert (by_keys.loc[125, "prediction"] == -1.0) and "probability" not in by_keys.columns
    assert fs.score_batch(custom.model_uri, keys, result_type="string").schema["prediction"].dataType.simpleString() \
        == "string"


def test_log_model_refuses_what_scoring_could_not_use(spark, fs):
    from inference.monitoring.loop import not_retrainable

    df = spark.createDataFrame([(1, DAY0, 2.0)], "customer_id bigint, day timestamp, spend double")
    fs.create_table("spend_daily", "customer_id", "day", df=df)
    labels = spark.createDataFrame([(1, DAY0 + timedelta(days=1), 1)], "customer_id bigint, t timestamp, y int")
    ts = fs.create_training_set(labels, [FeatureLookup("spend_daily", timestamp_lookup_key="t")], label="y")

    class Broken(mlflow.pyfunc.PythonModel):
        def predict(self, context, model_input, params=None):  # noqa: ANN001, ANN201
            return model_input["no_such_feature"]

    with pytest.raises(BadInputError, match=r"the model cannot predict the training set's feature columns \(spend\)"):
        fs.log_model(Broken(), flavor=mlflow.pyfunc, training_set=ts, registered_model_name="broken",
                     pip_requirements=["mlflow"])
    assert MlflowClient().search_registered_models(filter_string="name = 'broken'") == []
    with pytest.raises(BadInputError, match="invalid model name"):
        fs.log_model(SpendPerVisit(), flavor=mlflow.pyfunc, training_set=ts, registered_model_name="a b")
    with pytest.raises(BadInputError, match="flavor must be an MLflow flavor module"):
        fs.log_model(SpendPerVisit(), flavor=np, training_set=ts)

    class Doubled(mlflow.pyfunc.PythonModel):
        def predict(self, context, model_input, params=None):  # noqa: ANN001, ANN201
            return model_input["spend"] * 2

    mine = fs.log_model(Doubled(), flavor=mlflow.pyfunc, training_set=ts, registered_model_name="mine",
                        pip_requirements=["mlflow"])
    reason = not_retrainable(fs.config, "mine", int(mine.model_version))
    assert reason is not None and "was not trained by `featurelake train`" in reason
