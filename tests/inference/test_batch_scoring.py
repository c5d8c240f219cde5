"""Batch scoring with spark_udf and the idempotent predictions write (inputs already in the DataFrame)."""

from __future__ import annotations

import pandas as pd
import pytest
from inference_support import FEATURES, get_registry, scoring_rows

from featurestore.core.errors import BadInputError, NotFoundError
from inference.batch import read_input, run_batch_inference
from inference.predictions import KIND_PREDICTIONS


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    return get_registry(tmp_path_factory)


def _version(path: str) -> int | None:
    from deltalake import DeltaTable
    from deltalake.exceptions import TableNotFoundError

    try:
        return DeltaTable(path).version()
    except TableNotFoundError:
        return None


def _read(path: str) -> pd.DataFrame:
    from deltalake import DeltaTable

    return DeltaTable(path).to_pandas().sort_values(["batch_id", "id"]).reset_index(drop=True)


def test_predictions_equal_model_predict_and_rerun_replaces_batch(spark, registry):
    rows = scoring_rows()
    df = spark.createDataFrame(rows)
    result = run_batch_inference(spark, registry.config, df, "models:/lr_model/Production", keys=["id"],
                                 output_table="preds_equal", batch_id="b1")
    assert (result.model.version, result.rows_written, result.feature_lookup) == (1, len(rows), False)

    model = registry.models[1]
    out = _read(result.output_path)
    assert out["id"].tolist() == rows["id"].tolist()
    # exactly the sklearn model's output on the same rows, computed without Spark
    assert out["prediction"].tolist() == model.predict(rows[FEATURES]).astype("float64").tolist()
    assert out["probability"].to_numpy() == pytest.approx(model.predict_proba(rows[FEATURES])[:, 1], abs=1e-12)
    assert set(out["model_name"]) == {"lr_model"} and set(out["model_version"]) == {1}
    assert set(out["run_id"]) == {registry.run_ids[1]} and set(out["batch_id"]) == {"b1"}
    assert out["scored_at"].nunique() == 1

    version = _version(result.output_path)
    again = run_batch_inference(spark, registry.config, df, "models:/lr_model/Production", keys=["id"],
                                output_table="preds_equal", batch_id="b1")
    assert again.rows_written == len(rows) and again.delta_version == version + 1
    assert len(_read(result.output_path)) == len(rows)  # replaced, not duplicated

    other = run_batch_inference(spark, registry.config, df, "models:/lr_model@champion", keys=["id"],
                                output_table="preds_equal", batch_id="b2")
    assert other.model.version == 2
    both = _read(result.output_path)
    assert both.groupby("batch_id")["model_version"].unique().map(list).to_dict() == {"b1": [1], "b2": [2]}
    b2 = both[both["batch_id"] == "b2"]
    assert b2["prediction"].tolist() == registry.models[2].predict(rows[FEATURES]).astype("float64").tolist()


def test_table_schema_and_metadata_read_by_an_independent_reader(spark, registry):
    from deltalake import DeltaTable

    df = spark.createDataFrame(scoring_rows(rows=5))
    result = run_batch_inference(spark, registry.config, df, "models:/lr_model/1", keys=["id"],
                                 output_table="preds_schema", batch_id="s1")
    table = DeltaTable(result.output_path)
    fields = {f.name: str(f.type) for f in table.schema().fields}
    assert list(fields) == ["id", "prediction", "probability", "model_name", "model_version", "run_id",
                            "batch_id", "scored_at", "scoring_date"]
    assert [fields[c] for c in ("id", "prediction", "probability", "model_version", "scored_at", "scoring_date")] \
        == ['PrimitiveType("long")', 'PrimitiveType("double")', 'PrimitiveType("double")',
            'PrimitiveType("long")', 'PrimitiveType("timestamp")', 'PrimitiveType("date")']
    meta = table.metadata()
    assert meta.partition_columns == ["scoring_date"]
    assert meta.configuration["featurelake.kind"] == KIND_PREDICTIONS
    assert meta.configuration["featurelake.primary_keys"] == "id"


def test_int_inputs_are_widened_to_the_signature_type(spark, registry):
    rows = scoring_rows(rows=8)
    rows["x1"] = rows["x1"].round().astype("int32")  # int where the signature says double
    result = run_batch_inference(spark, registry.config, spark.createDataFrame(rows), "models:/lr_model/1",
                                 keys=["id"], output_table="preds_cast", batch_id="c1")
    out = _read(result.output_path)
    expected = registry.models[1].predict(rows[FEATURES].astype({"x1": "float64"}))
    assert out["prediction"].tolist() == expected.astype("float64").tolist()


def test_boolean_inputs_are_scored_as_the_0_and_1_training_saw(spark, registry):
    rows = scoring_rows(rows=8)
    rows["x1"] = rows["x1"] > 0  # a boolean feature: training logged it as double (0.0 / 1.0)
    result = run_batch_inference(spark, registry.config, spark.createDataFrame(rows), "models:/lr_model/1",
                                 keys=["id"], output_table="preds_bool", batch_id="b1")
    expected = registry.models[1].predict(rows[FEATURES].astype({"x1": "float64"}))
    assert _read(result.output_path)["prediction"].tolist() == expected.astype("float64").tolist()


def test_types_not_matching_the_signature_write_nothing(spark, registry):
    rows = scoring_rows(rows=4)
    rows["x2"] = rows["x2"].astype(str)
    with pytest.raises(BadInputError, match="column 'x2' is string but the signature .* expects double"):
        run_batch_inference(spark, registry.config, spark.createDataFrame(rows), "models:/lr_model/1",
                            keys=["id"], output_table="preds_types", batch_id="t1")
    assert _version(registry.config.table_path("preds_types")) is None


def test_bad_inputs_leave_the_table_unchanged(spark, registry):
    df = spark.createDataFrame(scoring_rows(rows=4))
    first = run_batch_inference(spark, registry.config, df, "models:/lr_model/1", keys=["id"],
                                output_table="preds_bad", batch_id="ok")
    with pytest.raises(BadInputError, match="lacks key column.*customer_id"):
        run_batch_inference(spark, registry.config, df, "models:/lr_model/1", keys=["customer_id"],
                            output_table="preds_bad", batch_id="ok")
    with pytest.raises(BadInputError, match="lacks column.*x3"):
        run_batch_inference(spark, registry.config, df.drop("x3"), "models:/lr_model/1", keys=["id"],
                            output_table="preds_bad", batch_id="ok")
    with pytest.raises(BadInputError, match="invalid batch id"):
        run_batch_inference(spark, registry.config, df, "models:/lr_model/1", keys=["id"],
                            output_table="preds_bad", batch_id="x' OR '1'='1")
    assert _version(first.output_path) == first.delta_version


def test_empty_input_writes_nothing(spark, registry):
    df = spark.createDataFrame(scoring_rows(rows=3)).limit(0)
    result = run_batch_inference(spark, registry.config, df, "models:/lr_model/Production", keys=["id"],
                                 output_table="preds_empty", batch_id="e1")
    assert result.empty and result.rows_written == 0
    assert _version(registry.config.table_path("preds_empty")) is None


def test_two_models_with_one_batch_id_keep_both_batches_and_a_rerun_replaces_only_its_own(spark, registry):
    df = spark.createDataFrame(scoring_rows(rows=6))
    common = dict(keys=["id"], output_table="preds_two_models", batch_id="2026-11-26")
    lr = run_batch_inference(spark, registry.config, df, "models:/lr_model/1", **common)
    idle = run_batch_inference(spark, registry.config, df, "models:/idle_model/1", **common)
    assert idle.rows_written == 6
    counts = _read(lr.output_path).groupby("model_name").size().to_dict()
    assert counts == {"idle_model": 6, "lr_model": 6}  # the second model kept the first one's batch

    again = run_batch_inference(spark, registry.config, df.limit(4), "models:/lr_model/1", **common)
    assert again.rows_written == 4
    counts = _read(lr.output_path).groupby("model_name").size().to_dict()
    assert counts == {"idle_model": 6, "lr_model": 4}  # the rerun replaced lr_model's rows only


def test_input_uris_without_a_double_slash_are_read_and_a_missing_one_is_not_found(spark, registry, tmp_path):
    # file:/... stands for dbfs:/... (the form Data Factory passes), which this machine cannot read
    spark.createDataFrame(scoring_rows(rows=3)).write.parquet(str(tmp_path / "entities"))
    spark.createDataFrame(scoring_rows(rows=2)).write.format("delta").save(str(tmp_path / "entities_delta"))
    assert read_input(spark, registry.config, f"file:{tmp_path}/entities").count() == 3
    assert read_input(spark, registry.config, f"file:{tmp_path}/entities_delta").count() == 2
    missing = f"file:{tmp_path}/no_such_input"
    with pytest.raises(NotFoundError, match=f"input path '{missing}' does not exist"):
        read_input(spark, registry.config, missing)
