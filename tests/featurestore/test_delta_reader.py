"""The Delta reader gives the same answers with delta-rs as with Spark, and falls back to Spark
(saying why, once) where delta-rs cannot read a location or a table."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from featurestore.delta_reader import DeltaReader, local_path, rust_cannot_read


def both_readers(spark) -> tuple[DeltaReader, DeltaReader]:
    """(delta-rs where it can, Spark always)."""
    return DeltaReader(lambda: spark), DeltaReader(lambda: spark, mode="spark")


def no_spark() -> None:
    raise AssertionError("delta-rs should have answered without Spark")


@pytest.mark.parametrize("location", ["/data/warehouse", "warehouse/t", "file:///data/warehouse", "file:/data/w"])
def test_local_locations_are_read_with_delta_rs(location):
    assert local_path(location) is not None and rust_cannot_read(location) is None


@pytest.mark.parametrize("location", ["abfss://lake@acct.dfs.core.windows.net/warehouse", "s3a://bucket/warehouse",
                                      "dbfs:/mnt/warehouse", "hdfs://namenode:8020/warehouse"])
def test_remote_locations_are_left_to_spark_with_the_reason(location):
    reason = rust_cannot_read(location)
    assert reason is not None and location in reason and "Hadoop configuration" in reason


@pytest.fixture(scope="module")
def typed_table(spark, tmp_path_factory) -> str:
    """A Delta table of many column types, with comments, properties and five commits."""
    path = str(tmp_path_factory.mktemp("reader") / "typed")
    target = f"delta.`{path}`"
    spark.sql(f"""CREATE TABLE {target} (
        id BIGINT COMMENT 'row id', small SMALLINT, tiny TINYINT, n INT, f FLOAT, d DOUBLE,
        amount DECIMAL(10,2), flag BOOLEAN, day DATE, at TIMESTAMP, local_at TIMESTAMP_NTZ, raw BINARY,
        tags ARRAY<STRING>, attrs MAP<STRING, INT>, point STRUCT<x: DOUBLE, label: STRING> COMMENT 'a point')
        USING delta COMMENT 'typed table' TBLPROPERTIES ('featurelake.kind' = 'test', 'team' = 'me')""")
    spark.sql(f"""INSERT INTO {target} VALUES
        (1, 2, 3, 4, 1.5, 2.5, 12.34, true, DATE'2026-03-01', TIMESTAMP'2026-03-01 10:00:00.123456',
         TIMESTAMP_NTZ'2026-03-01 10:00:00', X'CAFE', array('a', 'b'), map('k', 1), named_struct('x', 1.0, 'label', 'p')),
        (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
        (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)""")
    spark.sql(f"UPDATE {target} SET d = 9.5 WHERE id = 2")
    spark.sql(f"ALTER TABLE {target} SET TBLPROPERTIES ('team' = 'you')")
    spark.sql(f"DELETE FROM {target} WHERE id = 3")
    return path


def test_detail_columns_history_and_rows_are_the_same_both_ways(spark, typed_table):
    rust = DeltaReader(no_spark)
    _, with_spark = both_readers(spark)
    assert rust.is_delta_table(typed_table) and with_spark.is_delta_table(typed_table)
    assert rust.detail(typed_table) == with_spark.detail(typed_table)
    assert rust.detail(typed_table).properties["team"] == "you"
    assert rust.columns(typed_table) == with_spark.columns(typed_table)
    assert [c.type for c in rust.columns(typed_table)][-3:] == [
        "array<string>", "map<string,int>", "struct<x:double,label:string>"]
    assert rust.history(typed_table) == with_spark.history(typed_table)
    assert rust.history(typed_table, 2) == with_spark.history(typed_table, 2)
    assert len(rust.history(typed_table)) == 5


def by_id(rows: list[dict]) -> list[dict]:
    return sorted(rows, key=lambda r: r["id"])


def test_rows_are_the_same_both_ways_and_a_struct_column_is_left_to_spark(spark, typed_table, caplog):
    flat = typed_table + "_flat"
    spark.sql(f"CREATE TABLE delta.`{flat}` USING delta AS SELECT * EXCEPT (point) FROM delta.`{typed_table}`")
    rust = DeltaReader(no_spark)
    reader, with_spark = both_readers(spark)
    assert by_id(rust.rows(flat)) == by_id(with_spark.rows(flat))
    assert rust.row_count(flat) == with_spark.row_count(flat) == 2
    with caplog.at_level(logging.INFO, logger="featurestore.delta_reader"):
        assert by_id(reader.rows(typed_table)) == by_id(with_spark.rows(typed_table))
    assert "column 'point' is a struct" in caplog.text


def test_in_commit_timestamps_are_the_history_times_both_ways(spark, tmp_path):
    path = str(tmp_path / "ict")
    spark.sql(f"CREATE TABLE delta.`{path}` (id BIGINT) USING delta "
              "TBLPROPERTIES ('delta.enableInCommitTimestamps' = 'true')")
    spark.sql(f"INSERT INTO delta.`{path}` VALUES (1)")
    rust, with_spark = both_readers(spark)
    assert rust.history(path) == with_spark.history(path)
    assert rust.detail(path).last_modified == with_spark.detail(path).last_modified


def test_folders_and_missing_tables_both_ways(spark, typed_table, tmp_path):
    rust, with_spark = both_readers(spark)
    root = str(Path(typed_table).parent)
    assert rust.folders(root) == with_spark.folders(root)
    assert "typed" in rust.folders(root) and "_delta_log" in rust.folders(typed_table)
    assert rust.folders(str(tmp_path / "nothing")) == with_spark.folders(str(tmp_path / "nothing")) == []
    assert not rust.is_delta_table(str(tmp_path)) and not with_spark.is_delta_table(str(tmp_path))


@pytest.mark.parametrize("feature, properties", [
    ("deletion vectors", "'delta.enableDeletionVectors' = 'true'"),
    ("column mapping", "'delta.columnMapping.mode' = 'name'"),
])
def test_rows_delta_rs_would_misread_are_read_with_spark_saying_why_once(spark, tmp_path, caplog, feature,
                                                                         properties):
    path = str(tmp_path / "t")
    spark.sql(f"CREATE TABLE delta.`{path}` (id BIGINT, name STRING) USING delta TBLPROPERTIES ({properties})")
    spark.sql(f"INSERT INTO delta.`{path}` VALUES (1, 'a'), (2, 'b'), (3, 'c')")
    spark.sql(f"DELETE FROM delta.`{path}` WHERE id = 2")  # a deletion vector, when enabled
    spark.sql(f"ALTER TABLE delta.`{path}` RENAME COLUMN name TO label" if feature == "column mapping"
              else f"UPDATE delta.`{path}` SET name = 'z' WHERE id = 3")
    reader, with_spark = both_readers(spark)
    with caplog.at_level(logging.INFO, logger="featurestore.delta_reader"):
        rows = sorted(reader.rows(path), key=lambda r: r["id"])
        count = reader.row_count(path)
    # what the reader said; the Spark reader's own line below is not its (the logger may stay at INFO)
    told = [r.getMessage() for r in caplog.records if r.name == "featurestore.delta_reader"]
    assert rows == sorted(with_spark.rows(path), key=lambda r: r["id"]) and len(rows) == 2
    assert None not in rows[0].values() and count == 2
    assert len(told) == 1 and f"delta-rs cannot read the table at {path}" in told[0], told
    assert reader.columns(path) == with_spark.columns(path)  # its metadata delta-rs reads alone
