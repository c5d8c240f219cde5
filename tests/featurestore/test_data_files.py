"""Data files written by pandas as it does by default (nanosecond timestamps) are read, as sources of a build too."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pyspark.sql import functions as F

from featurestore.build import build_table
from featurestore.data_files import read_data_files
from featurestore.core.errors import BadInputError, NotFoundError
from tests.featurestore.sample_tables import user_table

NAIVE = ["1969-12-31 23:59:59.999999999", "2001-02-01 00:00:00", "2026-03-01 12:00:00.123456789"]
# the same instants in microseconds since the epoch, floored (naive times are read as UTC)
NAIVE_MICROS = [-1, 980_985_600_000_000, 1_772_366_400_123_456]


def _pandas_default(path: Path, frame: pd.DataFrame) -> str:
    """Write ``frame`` the way most people do, and check pandas kept nanoseconds (the case under test)."""
    frame.to_parquet(path)
    assert "timestamp[ns" in str(pq.read_schema(path).field("ts").type)
    return str(path)


def test_nanosecond_timestamps_written_by_pandas_are_read_as_timestamps(spark, tmp_path: Path) -> None:
    frame = pd.DataFrame({"id": [1, 2, 3], "ts": pd.to_datetime(NAIVE, format="ISO8601"),
                          "aware": pd.to_datetime(NAIVE, format="ISO8601").tz_localize("Europe/Paris"),
                          "count": [7, 8, 9]})
    df = read_data_files(spark, _pandas_default(tmp_path / "ns.parquet", frame), "labels")

    assert [(f.name, f.dataType.simpleString()) for f in df.schema.fields] == [
        ("id", "bigint"), ("ts", "timestamp"), ("aware", "timestamp"), ("count", "bigint")]
    rows = df.select("id", F.unix_micros("ts"), F.unix_micros("aware"), "count").orderBy("id").collect()
    paris = [m - 3_600_000_000 for m in NAIVE_MICROS]  # Paris is UTC+1 on these winter days
    assert [tuple(r) for r in rows] == [(i + 1, NAIVE_MICROS[i], paris[i], 7 + i) for i in range(3)]


def test_a_build_reads_a_pandas_default_source(spark, project) -> None:
    frame = pd.DataFrame({"user_id": [1, 2], "ts": pd.to_datetime(["2026-03-01 00:00:00", "2026-03-01 01:00:00.5"], format="ISO8601"),
                          "clicks": [3, 4], "spend": [1.5, 2.5]})
    (Path(project.source_root) / "raw").mkdir()
    _pandas_default(Path(project.source_root) / "raw" / "events.parquet", frame)
    table = user_table()

    result = build_table(spark, project, table)

    assert result.write.created and result.write.rows_inserted == 2
    rows = spark.read.format("delta").load(project.table_path(table.name)).orderBy("user_id").collect()
    assert [tuple(r) for r in rows] == [(1, datetime(2026, 3, 1), 3, 1.5),
                                        (2, datetime(2026, 3, 1, 1, 0, 0, 500000), 4, 2.5)]


def test_a_nested_nanosecond_timestamp_is_refused_naming_file_column_and_fix(spark, tmp_path: Path) -> None:
    path = tmp_path / "nested.parquet"
    stamp = pa.array([datetime(2026, 3, 1, tzinfo=timezone.utc)], pa.timestamp("ns"))
    pq.write_table(pa.table({"id": [1], "event": pa.StructArray.from_arrays([stamp], ["at"])}), path)

    with pytest.raises(BadInputError, match=r"^labels at .*nested.parquet: column 'event' holds nanosecond "
                                            r"timestamps .*coerce_timestamps='us'"):
        read_data_files(spark, str(path), "labels")


def test_a_path_that_exists_is_never_reported_not_found(spark, tmp_path: Path) -> None:
    (tmp_path / "empty_folder").mkdir()
    with pytest.raises(BadInputError, match="labels at .*empty_folder cannot be read as parquet"):
        read_data_files(spark, str(tmp_path / "empty_folder"), "labels")
    with pytest.raises(NotFoundError, match="labels at .*missing.parquet cannot be read"):
        read_data_files(spark, str(tmp_path / "missing.parquet"), "labels")
