"""Hostile and malformed input, one table of cases: each is refused with an error naming the
table and column (and the Delta table is left exactly as it was), or handled correctly (the
values read back equal what went in, and a rerun changes nothing).

Refusals run against two tables built once for the module; every refused case checks that
their Delta version and rows did not move. Accepted cases each build their own table.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Callable

import pandas as pd
import pytest
from pyspark.sql import functions as F

from featurestore.build import build_table
from featurestore.definitions import Field, Source
from featurestore.delta_tables import current_version
from featurestore.core.errors import BadInputError
from tests.conftest import make_config
from tests.featurestore.sample_tables import ROWS, T0, passthrough, user_table, write_source

BIG_STRING = "€" + "x" * (4 * 1024 * 1024) + "ü"  # a 4 MB feature value, non-ASCII at both ends
LONGEST_NAME = "f" * 128                             # the longest column name accepted
EXTREMES = [1e308, -1e308, math.inf, -math.inf, 5e-324, -0.0]


def _table(case_id: str, **overrides):
    """``user_table`` reading its own source file ``raw/<case_id>.parquet``."""
    return user_table(sources=[Source("events", f"raw/{case_id}.parquet")], **overrides)


def _double_key(spark, inputs):
    return passthrough(spark, inputs).withColumn("user_id", F.col("user_id").cast("double"))


DOUBLE_KEY = dict(name="user_activity_dk", primary_keys=[Field("user_id", "double", "User id (double)")],
                  transform=_double_key)


def _typed_frame(columns: dict[str, list], types: dict[str, str]) -> pd.DataFrame:
    frame = pd.DataFrame({name: pd.Series(values, dtype=types[name]) for name, values in columns.items()})
    frame["ts"] = pd.to_datetime(frame["ts"]).dt.tz_localize("UTC").astype("datetime64[us, UTC]")
    return frame


def _write_frame(root: Path, case_id: str, frame: pd.DataFrame) -> None:
    path = root / "raw" / f"{case_id}.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(path, index=False)


@dataclass(frozen=True)
class Case:
    """One hostile input: how to write its source, the definition to build, what must happen."""

    id: str
    definition: Callable[[str], object]              # case id -> FeatureTable (may itself raise)
    source: Callable[[Path, str], None] = lambda root, cid: write_source(root, ROWS, cid)
    error: str | None = None                         # refused: regex the BadInputError must match
    target: str = "user_activity"                    # refused: the table that must stay unchanged
    check: Callable | None = None                    # accepted: check(rows_read_back, build_result)


def _replace(column: str, when, value):
    """A transformation that sets ``column`` to ``value`` on the rows matching ``when``."""
    def transform(spark, inputs):
        df = passthrough(spark, inputs)
        return df.withColumn(column, F.when(when, value).otherwise(F.col(column)))
    return transform


def _replace_dk(column: str, when, value):
    def transform(spark, inputs):
        df = _double_key(spark, inputs)
        return df.withColumn(column, F.when(when, value).otherwise(F.col(column)))
    return transform


def _zero_byte_source(root: Path, case_id: str) -> None:
    path = root / "raw" / f"{case_id}.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")


def _empty_source(root: Path, case_id: str) -> None:
    _write_frame(root, case_id, _typed_frame({"user_id": [], "ts": [], "clicks": [], "spend": []},
                                             {"user_id": "int64", "ts": "datetime64[us]", "clicks": "int64",
                                              "spend": "float64"}))


def _extremes_source(root: Path, case_id: str) -> None:
    write_source(root, [(i + 1, T0, i, value) for i, value in enumerate(EXTREMES)], case_id)


def _nan_null_source(root: Path, case_id: str) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = root / "raw" / f"{case_id}.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table({  # pyarrow keeps NaN and null apart (pandas would merge them)
        "user_id": pa.array([1, 2, 3], pa.int64()),
        "ts": pa.array([T0] * 3, pa.timestamp("us", tz="UTC")),
        "clicks": pa.array([None, 2, None], pa.int64()),
        "spend": pa.array([math.nan, None, 1.0], pa.float64()),
    }), path)


def _big_source(root: Path, case_id: str) -> None:
    frame = _typed_frame({"user_id": [1, 2], "ts": [T0, T0], "clicks": [1, 2], "spend": [1.0, 2.0],
                          "note": [BIG_STRING, ""], LONGEST_NAME: [0.5, None]},
                         {"user_id": "int64", "ts": "datetime64[us]", "clicks": "int64", "spend": "float64",
                          "note": "object", LONGEST_NAME: "float64"})
    _write_frame(root, case_id, frame)


def _big_transform(spark, inputs):
    return passthrough(spark, inputs).join(inputs["events"].select("user_id", "note", LONGEST_NAME), "user_id")


def _check_extremes(rows, result):
    spend = [r["spend"] for r in sorted(rows, key=lambda r: r["user_id"])]
    assert spend == EXTREMES
    assert math.copysign(1.0, spend[-1]) == -1.0  # -0.0 kept its sign


def _check_nan_null(rows, result):
    by_id = {r["user_id"]: r for r in rows}
    assert [by_id[i]["clicks"] for i in (1, 2, 3)] == [None, 2, None]
    assert math.isnan(by_id[1]["spend"]) and by_id[2]["spend"] is None and by_id[3]["spend"] == 1.0


def _check_big(rows, result):
    by_id = {r["user_id"]: r for r in rows}
    assert by_id[1]["note"] == BIG_STRING and by_id[2]["note"] == ""
    assert by_id[1][LONGEST_NAME] == 0.5 and by_id[2][LONGEST_NAME] is None


def _check_empty_first_build(rows, result):
    assert rows == [] and result.write.created and result.write.rows_inserted == 0


CASES = [
    # --- refused: error names the table and the column, table unchanged -------------------------
    Case("null_primary_key", lambda cid: _table(cid, transform=_replace("user_id", F.col("clicks") == 5, F.lit(None))),
         error=r"'user_activity': null values in key column\(s\) 'user_id' \(1 rows\)"),
    Case("nan_primary_key", lambda cid: _table(cid, **{**DOUBLE_KEY, "transform": _replace_dk(
        "user_id", F.col("clicks") == 5, F.lit(float("nan")))}),
         error=r"'user_activity_dk': null values in key column\(s\) 'user_id' \(1 rows, null or NaN\)",
         target="user_activity_dk"),
    Case("null_timestamp", lambda cid: _table(cid, transform=_replace("ts", F.col("user_id") == 2, F.lit(None))),
         error=r"'user_activity': null values in key column\(s\) 'ts' \(1 rows\)"),
    Case("duplicate_rows", lambda cid: _table(cid),
         source=lambda root, cid: write_source(root, [*ROWS, ROWS[0]], cid),
         error=r"'user_activity': duplicate rows for the same key and timestamp \(user_id, ts\)"),
    Case("duplicate_key_other_values", lambda cid: _table(cid),
         source=lambda root, cid: write_source(root, [*ROWS, (1, T0, 99, 0.5)], cid),
         error=r"'user_activity': duplicate rows .*for example user_id=1, ts=2026-03-01 00:00:00 appears 2 times"),
    Case("column_name_too_long", lambda cid: _table(cid, features=[Field("f" * 129, "double")]),
         error=r"invalid column name 'f{129}'"),
    Case("zero_byte_source_file", lambda cid: _table(cid), source=_zero_byte_source,
         error=r"'user_activity': source 'events' at .*zero_byte_source_file.parquet is not valid parquet"),
    # --- accepted: values read back equal, a rerun changes nothing -------------------------------
    Case("extreme_doubles", lambda cid: _table(cid, name="t_extremes"), source=_extremes_source,
         check=_check_extremes),
    Case("nan_and_null_features", lambda cid: _table(cid, name="t_nan_null"), source=_nan_null_source,
         check=_check_nan_null),
    Case("several_mb_string_and_longest_name", lambda cid: _table(
        cid, name="t_big", transform=_big_transform,
        features=[Field("clicks", "bigint"), Field("spend", "double"), Field("note", "string", "Free text"),
                  Field(LONGEST_NAME, "double", "The longest column name")]),
         source=_big_source, check=_check_big),
    Case("empty_source_first_build", lambda cid: _table(cid, name="t_empty"), source=_empty_source,
         check=_check_empty_first_build),
]


@pytest.fixture(scope="module")
def baseline(spark, tmp_path_factory):
    """A project with two good tables (bigint and double key) that refused cases must not change."""
    root = tmp_path_factory.mktemp("hostile")
    config = make_config(root)
    write_source(root, ROWS, "baseline")
    for overrides in ({}, DOUBLE_KEY):
        build_table(spark, config, _table("baseline", **overrides))
    return config


def _state(spark, config, name: str) -> tuple[int | None, list[tuple]]:
    path = config.table_path(name)
    rows = spark.read.format("delta").load(path).collect()
    return current_version(spark, path), sorted(tuple(r) for r in rows)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_hostile_feature_input_is_refused_or_stored_faithfully(spark, baseline, case):
    config = baseline
    case.source(Path(config.source_root), case.id)
    if case.error is not None:
        before = _state(spark, config, case.target)
        with pytest.raises(BadInputError, match=case.error):
            build_table(spark, config, case.definition(case.id))
        assert _state(spark, config, case.target) == before
        return

    table = case.definition(case.id)
    result = build_table(spark, config, table)
    path = config.table_path(table.name)
    rows = [r.asDict() for r in spark.read.format("delta").load(path).collect()]
    case.check(rows, result)
    rerun = build_table(spark, config, table)  # NaN, inf and -0.0 compare equal to themselves in MERGE
    assert (rerun.write.rows_inserted, rerun.write.rows_updated) == (0, 0)
    assert spark.read.format("delta").load(path).count() == len(rows)


def test_empty_source_keeps_the_table_and_says_so(spark, baseline, caplog):
    """An empty source is no error: nothing is written, the table keeps its version and rows."""
    config = baseline
    _empty_source(Path(config.source_root), "baseline")  # same source path: same metadata
    before = _state(spark, config, "user_activity")
    with caplog.at_level(logging.INFO, logger="featurestore"):
        result = build_table(spark, config, _table("baseline"))
    assert (result.write.rows_inserted, result.write.rows_updated) == (0, 0)
    assert _state(spark, config, "user_activity") == before
    assert "user_activity: 0 rows inserted, 0 updated" in caplog.text


NO_ROWS = "empty training set.*'?user_activity"
TRAINING_CASES = [
    ("empty_label_set", lambda labels: labels.limit(0), NO_ROWS),
    ("only_null_labels", lambda labels: labels.withColumn("label", F.lit(None).cast("bigint")), NO_ROWS),
    ("null_entity_key", lambda labels: labels.withColumn(
        "user_id", F.when(F.col("label") == 0, F.lit(None)).otherwise(F.col("user_id"))),
     r"labels: null values in key column\(s\) 'user_id' \(1 rows\)"),
    ("null_label_time", lambda labels: labels.withColumn(
        "label_time", F.when(F.col("label") == 0, F.lit(None)).otherwise(F.col("label_time"))),
     r"labels: null values in key column\(s\) 'label_time' \(1 rows\)"),
]


@pytest.mark.parametrize(("make_labels", "error"), [c[1:] for c in TRAINING_CASES], ids=[c[0] for c in TRAINING_CASES])
def test_training_on_bad_labels_is_refused_before_any_run(spark, baseline, tmp_path, make_labels, error):
    """No labelled rows, or label rows without a key: a clear error naming the table or column, and
    nothing logged or registered."""
    from mlflow.tracking import MlflowClient

    from featurestore.training_set import FeatureLookup
    from inference.settings import TRAINING
    from inference.training import train_model

    config = make_config(tmp_path)
    config.warehouse = baseline.warehouse
    TRAINING.of(config).label = "label"
    labels = spark.createDataFrame([(1, T0 + timedelta(hours=2), 1), (2, T0 + timedelta(hours=2), 0)],
                                   "user_id bigint, label_time timestamp, label bigint")
    before = _state(spark, baseline, "user_activity")
    with pytest.raises(BadInputError, match=error):
        train_model(spark, config, make_labels(labels), model_name="hostile_model",
                    lookups=[FeatureLookup("user_activity", timestamp_lookup_key="label_time")])
    client = MlflowClient(config.mlflow.tracking_uri)
    assert client.search_registered_models() == []
    experiments = [e.experiment_id for e in client.search_experiments()]
    assert client.search_runs(experiments) == []
    assert _state(spark, baseline, "user_activity") == before
