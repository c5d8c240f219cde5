"""A MERGE given the source's time range reads only the target files whose timestamps overlap it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from featurestore.definitions import FeatureTable, Field
from featurestore.delta_tables import write_feature_table
from featurestore.core.errors import DependencyUnavailableError
from featurestore.validation import TimeRange, validate_feature_frame

TABLE = FeatureTable(name="merge_pruning", primary_keys=[Field("id", "bigint", "id")], timestamp_key="ts",
                     features=[Field("x", "double", "x")], description="merge pruning test")
DAY_1 = 1_735_689_600_000_000  # 2025-01-01 00:00:00 UTC, in microseconds
DAY = 86_400_000_000


def _rows(spark, ids: range, micros: int, x: float):
    return spark.range(ids.start, ids.stop).select(
        F.col("id"), F.timestamp_micros(F.lit(micros)).alias("ts"), F.lit(x).alias("x")).coalesce(1)


def _write(spark, path: str, df, pruned: bool = True):
    validated = validate_feature_frame(TABLE, df)
    return write_feature_table(spark, TABLE, path, validated.df, rows=validated.rows,
                               time_range=validated.time_range if pruned else None)


def test_validation_finds_the_exact_time_range(spark) -> None:
    df = _rows(spark, range(3), DAY_1 + 1, 0.0).unionByName(_rows(spark, range(3, 5), DAY_1 + DAY - 1, 0.0))
    assert validate_feature_frame(TABLE, df).time_range == TimeRange(DAY_1 + 1, DAY_1 + DAY - 1)
    assert validate_feature_frame(TABLE, df.limit(0)).time_range is None


def test_merge_of_recent_rows_never_reads_older_files(spark, tmp_path: Path) -> None:
    path = str(tmp_path / "merge_pruning")
    _write(spark, path, _rows(spark, range(10), DAY_1, 1.0))                # day 1: one file
    assert _write(spark, path, _rows(spark, range(10), DAY_1 + DAY, 2.0)).rows_inserted == 10  # day 2: new file
    day_1_files = {r.f for r in spark.read.format("delta").load(path).where(F.col("ts") == F.timestamp_micros(F.lit(DAY_1)))
                   .select(F.col("_metadata.file_path").alias("f")).collect()}
    assert len(day_1_files) == 1
    # Take day 1's file away: a MERGE that read it would fail, so success shows it was skipped.
    os.remove(next(iter(day_1_files)).removeprefix("file:"))
    day_2_update = _rows(spark, range(5, 15), DAY_1 + DAY, 3.0)             # 5 updates, 5 new ids
    with pytest.raises(DependencyUnavailableError) as unpruned:
        _write(spark, path, day_2_update, pruned=False)
    assert "FILE_NOT_EXIST" in str(unpruned.value.__cause__)
    result = _write(spark, path, day_2_update)
    assert (result.rows_inserted, result.rows_updated) == (5, 5)
    day_2 = spark.read.format("delta").load(path).where(F.col("ts") == F.timestamp_micros(F.lit(DAY_1 + DAY)))
    assert sorted((r.id, r.x) for r in day_2.collect()) == [(i, 2.0) for i in range(5)] + [(i, 3.0) for i in range(5, 15)]


def test_time_range_holds_in_any_session_time_zone_and_below_a_millisecond(spark, tmp_path: Path) -> None:
    path = str(tmp_path / "merge_pruning_tz")
    # Rows on the range's own edges, each edge in a file of its own: an hour's shift would skip
    # one file. Delta keeps timestamp statistics in milliseconds, so the first file's maximum
    # is stored 999 microseconds below its rows: a MERGE that trusted it would skip that file.
    first, last = DAY_1 + 999, DAY_1 + 3_600_000_999
    _write(spark, path, _rows(spark, range(3), first, 1.0))
    _write(spark, path, _rows(spark, range(3), last, 1.0))
    df = _rows(spark, range(3), first, 1.0).unionByName(_rows(spark, range(3), last, 1.0))
    before = spark.conf.get("spark.sql.session.timeZone")
    spark.conf.set("spark.sql.session.timeZone", "Asia/Kolkata")
    try:
        result = _write(spark, path, df.withColumn("x", F.lit(2.0)))
    finally:
        spark.conf.set("spark.sql.session.timeZone", before)
    assert (result.rows_inserted, result.rows_updated) == (0, 6)
    assert spark.read.format("delta").load(path).where("x = 2.0").count() == 6
