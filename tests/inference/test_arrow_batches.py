"""Scoring's Arrow batch size holds even when the UDF reads straight from a parquet or Delta scan."""

from __future__ import annotations

import pandas as pd
from pyspark.sql import functions as F

from inference.scoring import ARROW_BATCH_CONF, COLUMNAR_INPUT_CONF, arrow_batch_size


def test_udf_over_a_parquet_scan_gets_the_configured_batch_size(spark, tmp_path):
    path = str(tmp_path / "rows.parquet")
    spark.range(6000).select((F.col("id") * 0.5).alias("x")).coalesce(1).write.parquet(path)
    scanned = spark.read.parquet(path)
    assert scanned.rdd.getNumPartitions() == 1
    before = {key: spark.conf.get(key, None) for key in (ARROW_BATCH_CONF, COLUMNAR_INPUT_CONF)}

    def batch_length(values: pd.Series) -> pd.Series:  # defined here: Spark pickles it by value
        return pd.Series([len(values)] * len(values))

    # The test session runs without whole-stage code generation (quick start), and then the parquet
    # reader hands out rows, not column batches: turn it on to take the columnar path.
    whole_stage = spark.conf.get("spark.sql.codegen.wholeStage")
    spark.conf.set("spark.sql.codegen.wholeStage", "true")
    try:
        with arrow_batch_size(spark, 5000):
            lengths = scanned.select(F.pandas_udf(batch_length, "long")("x").alias("n")).groupBy("n").count().collect()
    finally:
        spark.conf.set("spark.sql.codegen.wholeStage", whole_stage)

    # Each row holds the length of the Arrow batch it arrived in. The parquet reader's own
    # batches are 4096 rows: 5000 shows that the setting reached the UDF.
    assert {row["n"]: row["count"] for row in lengths} == {5000: 5000, 1000: 1000}
    assert {key: spark.conf.get(key, None) for key in before} == before
