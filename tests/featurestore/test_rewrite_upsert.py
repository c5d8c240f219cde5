"""A build that spans the whole table is upserted by one rewrite commit, with a MERGE's result."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from pyspark.sql import functions as F

from featurestore.definitions import FeatureTable, Field
from featurestore.delta_tables import source_spans_table, table_history, write_feature_table
from featurestore.validation import validate_feature_frame

TABLE = FeatureTable(name="rewrite_upsert", primary_keys=[Field("id", "bigint", "the entity")], timestamp_key="ts",
                     features=[Field("x", "double", "a feature"), Field("y", "string", "another feature")],
                     description="rewrite upsert test")
DAY_1 = 1_735_689_600_000_000  # 2025-01-01 00:00:00 UTC, in microseconds
DAY = 86_400_000_000


def _frame(spark, rows: list[tuple[int, int, float | None, str | None]]):
    """Rows of (id, day number, x, y)."""
    df = spark.createDataFrame(rows, "id bigint, day bigint, x double, y string")
    return df.select("id", F.timestamp_micros(F.lit(DAY_1) + F.col("day") * DAY).alias("ts"), "x", "y")


def _write(spark, path: str, df):
    validated = validate_feature_frame(TABLE, df)
    return write_feature_table(spark, TABLE, path, validated.df, rows=validated.rows,
                               time_range=validated.time_range)


def _content(spark, path: str) -> list[tuple]:
    rows = spark.read.format("delta").load(path).select("id", F.unix_micros("ts"), "x", "y").collect()
    return sorted(tuple(r) for r in rows)


def test_rebuild_rewrites_the_table_in_one_commit_with_merge_results(spark, tmp_path: Path) -> None:
    path = str(tmp_path / "rebuild")
    base = [(i, day, float(i), "a") for i in range(4) for day in (0, 1)]
    _write(spark, path, _frame(spark, base))
    comments_before = {f.name: f.metadata.get("comment") for f in spark.read.format("delta").load(path).schema}
    properties_before = spark.sql(f"DESCRIBE DETAIL delta.`{path}`").first()["properties"]
    # The rebuild spans both days and has 7 of the table's 8 rows plus 2 new ones:
    # (0, day 0) is missing from it and must stay; (1, day 0) changes x, (2, day 1) changes y
    # to null, (3, day 1) changes nothing; ids 4 and 5 are new.
    rebuild = [r for r in base if r[:2] != (0, 0)]
    rebuild = [(i, d, 9.0 if (i, d) == (1, 0) else x, None if (i, d) == (2, 1) else y) for i, d, x, y in rebuild]
    rebuild += [(4, 0, 4.0, "b"), (5, 1, None, "b")]
    result = _write(spark, path, _frame(spark, rebuild))

    assert (result.rows_inserted, result.rows_updated) == (2, 2)
    assert result.version_after == result.version_before + 1  # one commit
    assert table_history(spark, path, 1)[0]["operation"] == "WRITE"  # the rewrite, not a MERGE
    expected = sorted([(0, DAY_1, 0.0, "a")] + [(i, DAY_1 + d * DAY, x, y) for i, d, x, y in rebuild])
    assert _content(spark, path) == expected
    assert {f.name: f.metadata.get("comment") for f in spark.read.format("delta").load(path).schema} == comments_before
    assert spark.sql(f"DESCRIBE DETAIL delta.`{path}`").first()["properties"] == properties_before

    rerun = _write(spark, path, _frame(spark, rebuild))
    assert (rerun.rows_inserted, rerun.rows_updated) == (0, 0)
    assert _content(spark, path) == expected


def test_an_unchanged_rerun_commits_nothing_by_merge_or_rewrite(spark, tmp_path: Path) -> None:
    path = str(tmp_path / "unchanged")
    day_0, day_1 = ([(i, day, float(i), None if i == 2 else "a") for i in range(4)] for day in (0, 1))
    _write(spark, path, _frame(spark, day_0))
    _write(spark, path, _frame(spark, day_1))  # version 1, a MERGE
    history = table_history(spark, path)

    for rows in (day_1, day_0 + day_1):  # a MERGE (day 1 only), a rewrite (spans the table)
        rerun = _write(spark, path, _frame(spark, rows))
        assert (rerun.rows_inserted, rerun.rows_updated) == (0, 0)
        assert rerun.version_after == rerun.version_before == 1
        assert table_history(spark, path) == history

    changed = _write(spark, path, _frame(spark, [*day_1[:3], (3, 1, 9.0, "a")]))  # one value changed
    assert (changed.rows_inserted, changed.rows_updated, changed.version_after) == (0, 1, 2)
    assert table_history(spark, path, 1)[0]["operation"] == "MERGE"


def test_only_a_source_over_the_whole_time_range_and_half_the_rows_spans_the_table(spark, tmp_path: Path) -> None:
    path = str(tmp_path / "spans")
    _write(spark, path, _frame(spark, [(i, 0, 1.0, "a") for i in range(4)]))   # day 0: one file
    _write(spark, path, _frame(spark, [(i, 1, 1.0, "a") for i in range(4)]))   # day 1: another
    both_days = validate_feature_frame(TABLE, _frame(spark, [(0, 0, 2.0, "a"), (0, 1, 2.0, "a"),
                                                             (1, 0, 2.0, "a"), (1, 1, 2.0, "a")]))
    day_1 = validate_feature_frame(TABLE, _frame(spark, [(i, 1, 2.0, "a") for i in range(8)]))
    assert source_spans_table(spark, TABLE, path, both_days.rows, both_days.time_range)      # 4 of 8 rows
    assert not source_spans_table(spark, TABLE, path, 3, both_days.time_range)               # 3 of 8 rows
    assert not source_spans_table(spark, TABLE, path, day_1.rows, day_1.time_range)          # day 0 outside
    assert not source_spans_table(spark, TABLE, path, both_days.rows, None)                  # range unknown
    assert table_history(spark, path, 1)[0]["operation"] == "MERGE"  # the day-1 write merged


def test_a_commit_landing_during_the_rewrite_is_kept(spark, tmp_path: Path) -> None:
    """Another writer appends while the rewrite runs: the rewrite conflicts, is retried and keeps the row."""
    path = str(tmp_path / "concurrent")
    _write(spark, path, _frame(spark, [(i, 0, 1.0, "a") for i in range(4)]))
    armed, started, appended = (str(tmp_path / name) for name in ("armed", "started", "appended"))

    @F.udf("double")
    def wait_for_the_other_writer(x):  # runs in a Python worker while the rewrite reads its source
        import os
        import time as worker_time
        if os.path.exists(armed):
            open(started, "a").close()
            deadline = worker_time.monotonic() + 60
            while not os.path.exists(appended) and worker_time.monotonic() < deadline:
                worker_time.sleep(0.05)
        return x

    # One partition: its task waits in one core and leaves the other to the appending writer.
    source = (_frame(spark, [(i, 0, 2.0, "a") for i in range(4)]).coalesce(1)
              .withColumn("x", wait_for_the_other_writer("x")))
    validated = validate_feature_frame(TABLE, source)  # unarmed: the UDF does not wait here
    Path(armed).touch()
    outcome: dict = {}

    def rewrite() -> None:
        try:
            outcome["result"] = write_feature_table(spark, TABLE, path, validated.df, rows=validated.rows,
                                                    time_range=validated.time_range)
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            outcome["error"] = exc

    writer = threading.Thread(target=rewrite)
    writer.start()
    deadline = time.monotonic() + 120
    while not Path(started).exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert Path(started).exists(), "the rewrite never started reading its source"
    _frame(spark, [(99, 0, 9.0, "other writer")]).write.format("delta").mode("append").save(path)
    Path(appended).touch()
    writer.join(timeout=180)

    assert "error" not in outcome, outcome.get("error")
    assert (outcome["result"].rows_inserted, outcome["result"].rows_updated) == (0, 4)
    assert _content(spark, path) == sorted([(i, DAY_1, 2.0, "a") for i in range(4)]
                                           + [(99, DAY_1, 9.0, "other writer")])
    operations = [h["operation"] for h in table_history(spark, path, 2)]
    assert operations == ["WRITE", "WRITE"]  # the append, then the retried rewrite on top of it


def test_rebuild_keeps_the_partitioning(spark, tmp_path: Path) -> None:
    table = FeatureTable(name="partitioned", primary_keys=[Field("id", "bigint", "the entity")], timestamp_key="ts",
                         features=[Field("x", "double", "a feature"), Field("region", "string", "a partition")],
                         partition_by=["region"], description="partitioned rebuild")
    path = str(tmp_path / "partitioned")
    base = spark.createDataFrame([(1, 0.5, "a"), (2, 1.5, "b")], "id bigint, x double, region string")
    base = base.select("id", F.timestamp_micros(F.lit(DAY_1)).alias("ts"), "x", "region")
    for df in (base, base.withColumn("x", F.lit(9.0))):
        validated = validate_feature_frame(table, df)
        result = write_feature_table(spark, table, path, validated.df, rows=validated.rows,
                                     time_range=validated.time_range)
    assert (result.rows_inserted, result.rows_updated) == (0, 2)
    assert table_history(spark, path, 1)[0]["operation"] == "WRITE"
    assert spark.sql(f"DESCRIBE DETAIL delta.`{path}`").first()["partitionColumns"] == ["region"]
    got = spark.read.format("delta").load(path).select("id", "x", "region").collect()
    assert sorted(tuple(r) for r in got) == [(1, 9.0, "a"), (2, 9.0, "b")]


def test_a_table_without_features_only_gains_rows_by_merge_or_rewrite(spark, tmp_path: Path) -> None:
    keys_only = FeatureTable(name="keys_only", primary_keys=[Field("id", "bigint", "the entity")], timestamp_key="ts",
                             features=[], description="a table of keys")
    path = str(tmp_path / "keys_only")

    def write(rows: list[tuple[int, int]]):
        df = spark.createDataFrame(rows, "id bigint, day bigint").select(
            "id", F.timestamp_micros(F.lit(DAY_1) + F.col("day") * DAY).alias("ts"))
        validated = validate_feature_frame(keys_only, df)
        result = write_feature_table(spark, keys_only, path, validated.df, rows=validated.rows,
                                     time_range=validated.time_range)
        return result.rows_inserted, result.rows_updated, table_history(spark, path, 1)[0]["operation"]

    write([(1, 0), (2, 1)])
    assert write([(1, 0), (3, 0)]) == (1, 0, "MERGE")            # day 1 outside the source: a MERGE
    assert write([(1, 0), (2, 1), (4, 1)]) == (1, 0, "WRITE")    # spans the table: a rewrite
    assert sorted(tuple(r) for r in spark.read.format("delta").load(path).select("id", F.unix_micros("ts")).collect()) \
        == [(1, DAY_1), (2, DAY_1 + DAY), (3, DAY_1), (4, DAY_1 + DAY)]
