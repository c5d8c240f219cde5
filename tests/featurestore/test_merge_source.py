"""MERGE reads a deterministic source twice instead of copying it first; other sources keep the copy."""

from __future__ import annotations

from pathlib import Path

from pyspark.sql import functions as F

from featurestore.delta_tables import (MATERIALIZE_SOURCE, _source_read_twice_if_deterministic, merge_into,
                                       write_feature_table)
from featurestore.definitions import FeatureTable, Field

TABLE = FeatureTable(name="merge_source", primary_keys=[Field("id", "bigint", "id")], timestamp_key="ts",
                     features=[Field("x", "double", "x")], description="merge source test")


def _rows(spark, x):
    return spark.range(4).select(F.col("id"), F.lit("2025-01-01 00:00:00").cast("timestamp").alias("ts"),
                                 x.cast("double").alias("x"))


def test_deterministic_source_is_not_copied(spark) -> None:
    source = _rows(spark, F.col("id") * 2)
    assert spark.conf.get(MATERIALIZE_SOURCE, "auto") == "auto"
    with _source_read_twice_if_deterministic(spark, source):
        assert spark.conf.get(MATERIALIZE_SOURCE) == "none"
    assert spark.conf.get(MATERIALIZE_SOURCE) == "auto"


def test_non_deterministic_source_and_user_setting_are_left_alone(spark) -> None:
    with _source_read_twice_if_deterministic(spark, _rows(spark, F.rand(seed=1))):
        assert spark.conf.get(MATERIALIZE_SOURCE, "auto") == "auto"
    for chosen in ("all", "auto"):  # a value the user set is kept, even the default one
        spark.conf.set(MATERIALIZE_SOURCE, chosen)
        try:
            with _source_read_twice_if_deterministic(spark, _rows(spark, F.col("id"))):
                assert spark.conf.get(MATERIALIZE_SOURCE) == chosen
            assert spark.conf.get(MATERIALIZE_SOURCE) == chosen
        finally:
            spark.conf.unset(MATERIALIZE_SOURCE)


def test_merge_results_are_the_same_either_way(spark, tmp_path: Path) -> None:
    path = str(tmp_path / "merge_source")
    write_feature_table(spark, TABLE, path, _rows(spark, F.col("id")))
    assert merge_into(spark, TABLE, path, _rows(spark, F.col("id") + 10)) == (0, 4)
    noisy = _rows(spark, F.col("id") + 100 + F.rand(seed=3) * 0)  # non-deterministic plan, fixed values
    assert merge_into(spark, TABLE, path, noisy) == (0, 4)
    values = sorted(r.x for r in spark.read.format("delta").load(path).collect())
    assert values == [100.0, 101.0, 102.0, 103.0]
    assert spark.conf.get(MATERIALIZE_SOURCE) == "auto"
