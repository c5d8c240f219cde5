"""Batch inference with automatic feature lookup from the training-set spec (demo feature tables)."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest
from inference_support import log_model, make_config

from featurestore.core.errors import BadInputError, NotFoundError
from inference.batch import run_batch_inference

NUMERIC = ["age", "tenure_days", "spend_7d", "txn_count_7d"]
LOOKUPS = [
    {"table": "customer_profile", "features": ["age", "tenure_days", "country"], "lookup_keys": ["customer_id"],
     "timestamp_lookup_key": "label_time", "ttl_seconds": None},
    {"table": "customer_weekly_spend", "features": ["spend_7d", "txn_count_7d"], "lookup_keys": ["customer_id"],
     "timestamp_lookup_key": "label_time", "ttl_seconds": None},
]


def _spec(lookups: list[dict], columns: list[str]) -> dict:
    return {"label": "churned", "timestamp_key": "label_time", "entity_keys": ["customer_id"],
            "feature_columns": columns, "lookups": lookups}


@pytest.fixture(scope="module")
def lookup_project(spark, demo_project, tmp_path_factory):
    """A project reading the demo's feature tables (linked, not copied) with its own registry and outputs."""
    import warnings

    from inference.estimators import build_pipeline
    from featurestore.training_set import FeatureLookup, join_features
    from sklearn.linear_model import LogisticRegression

    from inference.tracking import client as mlflow_client

    root: Path = tmp_path_factory.mktemp("lookup")
    config = make_config(root)
    os.makedirs(config.warehouse)
    for table in ("customer_profile", "customer_weekly_spend"):
        os.symlink(demo_project.table_path(table), config.table_path(table))
    labels = spark.read.parquet(str(Path(demo_project.source_root) / "raw" / "churn_labels.parquet"))
    joined, _ = join_features(spark, config, labels, [FeatureLookup.from_dict(x) for x in LOOKUPS])
    train = joined.toPandas()
    train[NUMERIC] = train[NUMERIC].astype("float64")
    columns = [*NUMERIC, "country"]
    model = build_pipeline(LogisticRegression(max_iter=500), NUMERIC, ["country"]).fit(train[columns], train["churned"])
    client = mlflow_client(config)
    client.create_registered_model("churn_lookup")
    client.create_registered_model("churn_broken")
    log_model(config, "churn_lookup", model, train[columns], spec=_spec(LOOKUPS, columns))
    broken = [dict(LOOKUPS[0], features=["age", "no_such_feature"])]
    train["no_such_feature"] = 1.0
    log_model(config, "churn_broken", LogisticRegression().fit(train[["age", "no_such_feature"]], train["churned"]),
              train[["age", "no_such_feature"]], spec=_spec(broken, ["age", "no_such_feature"]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        client.transition_model_version_stage("churn_lookup", "1", "Production")
    return config, labels, model, columns


def _expected(spark, config, entities, model, columns, timestamp: bool):
    """The sklearn model's own predictions on features joined independently of the job."""
    from featurestore.training_set import FeatureLookup, join_features

    lookups = [FeatureLookup.from_dict(dict(x, timestamp_lookup_key="label_time" if timestamp else None))
               for x in LOOKUPS]
    order = ["customer_id", "label_time"] if timestamp else ["customer_id"]
    rows = join_features(spark, config, entities, lookups)[0].toPandas().sort_values(order)
    rows[NUMERIC] = rows[NUMERIC].astype("float64")
    return rows["customer_id"].tolist(), model.predict(rows[columns]).astype("float64").tolist()


def test_keys_only_input_gets_latest_features(spark, lookup_project):
    config, labels, model, columns = lookup_project
    entities = labels.select("customer_id").limit(40)
    result = run_batch_inference(spark, config, entities, "models:/churn_lookup/Production",
                                 output_table="lookup_latest", batch_id="l1")
    assert result.feature_lookup and result.rows_written == 40
    out = spark.read.format("delta").load(result.output_path).orderBy("customer_id").toPandas()
    assert list(out.columns[:3]) == ["customer_id", "prediction", "probability"]
    keys, predictions = _expected(spark, config, entities, model, columns, timestamp=False)
    assert out["customer_id"].tolist() == keys
    assert out["prediction"].tolist() == predictions


def test_timestamp_column_gives_point_in_time_features(spark, lookup_project):
    from pyspark.sql import functions as F

    config, labels, model, columns = lookup_project
    first = labels.select("customer_id", "label_time").limit(40)
    earlier = first.limit(5).withColumn("label_time", F.col("label_time") - F.expr("INTERVAL 30 DAYS"))
    entities = first.unionByName(earlier)  # five customers scored at two times
    result = run_batch_inference(spark, config, entities, "models:/churn_lookup/1",
                                 output_table="lookup_pit", batch_id="p1")
    out = spark.read.format("delta").load(result.output_path).orderBy("customer_id", "label_time").toPandas()
    assert list(out.columns[:2]) == ["customer_id", "label_time"]  # the time tells the two rows apart
    scored = entities.orderBy("customer_id", "label_time").toPandas()
    assert out[["customer_id", "label_time"]].values.tolist() == scored[["customer_id", "label_time"]].values.tolist()
    keys, predictions = _expected(spark, config, entities, model, columns, timestamp=True)
    assert out["customer_id"].tolist() == keys
    assert out["prediction"].tolist() == predictions


def test_entities_written_by_pandas_with_nanosecond_timestamps_are_scored_point_in_time(spark, lookup_project,
                                                                                        tmp_path):
    import pyarrow.parquet as pq

    config, labels, model, columns = lookup_project
    entities = labels.select("customer_id", "label_time").limit(30)
    frame = entities.toPandas()  # naive datetime64 (the session's UTC wall clock), as a user's pandas holds them
    frame["label_time"] = frame["label_time"].astype("datetime64[ns]")
    frame.to_parquet(tmp_path / "entities.parquet")  # pandas' default: nanosecond timestamps
    assert str(pq.read_schema(tmp_path / "entities.parquet").field("label_time").type) == "timestamp[ns]"

    result = run_batch_inference(spark, config, str(tmp_path / "entities.parquet"), "models:/churn_lookup/1",
                                 output_table="lookup_pandas_ns", batch_id="n1")

    out = spark.read.format("delta").load(result.output_path).orderBy("customer_id", "label_time").toPandas()
    keys, predictions = _expected(spark, config, entities, model, columns, timestamp=True)
    assert result.rows_written == 30
    assert out["customer_id"].tolist() == keys
    assert out["prediction"].tolist() == predictions


def test_lookup_bad_inputs_write_nothing(spark, lookup_project):
    config, labels, _, _ = lookup_project
    with pytest.raises(BadInputError, match="lacks key column.*customer_id"):
        run_batch_inference(spark, config, labels.select("label_time"), "models:/churn_lookup/1",
                            output_table="lookup_bad", batch_id="x")
    with pytest.raises(NotFoundError, match="no feature.*'no_such_feature'"):
        run_batch_inference(spark, config, labels.select("customer_id"), "models:/churn_broken/1",
                            output_table="lookup_bad", batch_id="x")
    assert not os.path.exists(config.table_path("lookup_bad"))


def test_the_lookup_join_is_computed_once(spark, lookup_project, tmp_path):
    """Nothing before the write computes the join: each input row reaches it once.

    The input carries one of the model's features (``age``) from a Python UDF that counts its
    calls, and broadcasts are off, so the join shuffles the input: any Spark job that ran the
    join's stages before the write would count every row again.
    """
    from pyspark.sql import functions as F

    config, labels, _, _ = lookup_project
    labels.select("customer_id").limit(40).write.parquet(str(tmp_path / "entities"))
    calls = spark.sparkContext.accumulator(0)

    def age(customer_id: int) -> int:
        calls.add(1)
        return int(customer_id % 50 + 20)

    entities = spark.read.parquet(str(tmp_path / "entities")).withColumn("age", F.udf(age, "int")("customer_id"))
    previous = spark.conf.get("spark.sql.autoBroadcastJoinThreshold")
    spark.conf.set("spark.sql.autoBroadcastJoinThreshold", "-1")
    try:
        result = run_batch_inference(spark, config, entities, "models:/churn_lookup/1",
                                     output_table="lookup_once", batch_id="o1")
    finally:
        spark.conf.set("spark.sql.autoBroadcastJoinThreshold", previous)
    assert result.feature_lookup and result.rows_written == 40
    assert calls.value == 40


def test_model_with_only_optional_inputs_is_scored_by_keys(spark, lookup_project):
    """Labels earlier than every feature row give nulls in every feature column, so MLflow marks each
    input of the trained model optional (``required: false``): the features are looked up all the same."""
    import copy

    import mlflow
    from pyspark.sql import functions as F

    from inference.settings import TRAINING, LookupSettings
    from inference.tracking import configure_mlflow
    from inference.training import train_model
    from featurestore.training_set import FeatureLookup, join_features

    config, labels, _, _ = lookup_project
    config = copy.deepcopy(config)
    training = TRAINING.of(config)
    training.model_name, training.label = "churn_optional", "churned"
    training.lookups = [LookupSettings(x["table"], x["features"], x["lookup_keys"], "label_time")
                               for x in LOOKUPS]
    # one label in three precedes the first feature row: its features are all null
    early = labels.withColumn("label_time", F.when(F.col("customer_id") % 3 == 0, F.lit("1990-01-01").cast(
        "timestamp")).otherwise(F.col("label_time")))
    trained = train_model(spark, config, early)
    signature = mlflow.models.get_model_info(trained.model_uri).signature
    assert signature.inputs.input_names() == trained.spec.feature_columns
    assert not any(column.required for column in signature.inputs.inputs)  # the case of the defect

    entities = labels.select("customer_id").limit(40)
    result = run_batch_inference(spark, config, entities, trained.model_uri, output_table="lookup_optional",
                                 batch_id="n1")
    assert result.feature_lookup and result.rows_written == 40
    out = spark.read.format("delta").load(result.output_path).orderBy("customer_id").toPandas()
    rows = join_features(spark, config, entities, [FeatureLookup.from_dict(dict(x, timestamp_lookup_key=None))
                                                   for x in LOOKUPS])[0].toPandas().sort_values("customer_id")
    rows[NUMERIC] = rows[NUMERIC].astype("float64")
    configure_mlflow(config, check=False)
    expected = mlflow.pyfunc.load_model(trained.model_uri).predict(rows[trained.spec.feature_columns])
    assert out["customer_id"].tolist() == rows["customer_id"].tolist()
    assert out["prediction"].tolist() == pd.Series(expected).astype("float64").tolist()


def test_model_left_without_inputs_is_bad_input(spark, lookup_project):
    """A model whose inputs are all optional, no training-set spec, and an input with none of them."""
    import numpy as np
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    from inference.tracking import client as mlflow_client

    config, labels, _, _ = lookup_project
    X = pd.DataFrame({"a": [np.nan, 1.0, 2.0, 3.0], "b": [0.5, np.nan, 1.5, 2.5]})
    model = make_pipeline(SimpleImputer(), LogisticRegression()).fit(X, [0, 1, 0, 1])
    mlflow_client(config).create_registered_model("optional_no_spec")
    log_model(config, "optional_no_spec", model, X)
    with pytest.raises(BadInputError, match=r"none of the input columns of model 'optional_no_spec' version 1 \(a, b\)"):
        run_batch_inference(spark, config, labels.select("customer_id"), "models:/optional_no_spec/1",
                            keys=["customer_id"], output_table="lookup_no_inputs", batch_id="x")
    assert not os.path.exists(config.table_path("lookup_no_inputs"))
