"""Online features through Feast: full then incremental materialization, reads, CLI."""

from __future__ import annotations

import json
import math
import shutil
from datetime import datetime, timezone
from pathlib import Path

import pytest
from delta.tables import DeltaTable
from pyspark.sql import Window
from pyspark.sql import functions as F

from jobs.demo.feature_tables import FEATURE_TABLES
from featurestore.core.config import Config, resolve_paths, write_config
from featurestore.feast_repo import register_tables
from featurestore.online import EPOCH, get_online_features, materialize
from jobs import materialize as materialize_job
from jobs import online_features as online_job

TABLE = "customer_weekly_spend"
FEATURES = ["txn_count_7d", "spend_7d", "avg_amount_7d", "days_since_last_txn"]
FIRST_END = datetime(2026, 6, 1, tzinfo=timezone.utc)
NEW_WEEK = datetime(2026, 6, 8, tzinfo=timezone.utc)
SECOND_END = datetime(2026, 7, 1, tzinfo=timezone.utc)


def newest_offline(spark, path: str) -> dict[int, dict]:
    """Newest row per customer of the Delta table, computed independently of Feast."""
    df = spark.read.format("delta").load(path)
    w = Window.partitionBy("customer_id").orderBy(F.col("week_end").desc())
    rows = df.withColumn("rn", F.row_number().over(w)).where("rn = 1").drop("rn").collect()
    return {r["customer_id"]: r.asDict() for r in rows}


def assert_same(online: dict, offline: dict) -> None:
    for feature in FEATURES:
        assert math.isclose(float(online[feature]), float(offline[feature]), rel_tol=1e-9), feature


@pytest.fixture(scope="module")
def online_project(spark, demo_project, tmp_path_factory):
    """A project holding a private copy of the demo's weekly-spend table, registered in Feast."""
    root = tmp_path_factory.mktemp("online")
    config = resolve_paths(Config(warehouse="warehouse"), root)
    shutil.copytree(demo_project.table_path(TABLE), config.table_path(TABLE))
    table = next(t for t in FEATURE_TABLES if t.name == TABLE)
    register_tables(config, [table])
    write_config(config, root / "featurelake.yaml")
    return config


@pytest.mark.slow
def test_full_then_incremental_materialization(spark, online_project):
    config = online_project
    path = config.table_path(TABLE)
    total = spark.read.format("delta").load(path).count()

    first = materialize(spark, config, [TABLE], FIRST_END)
    assert [(r.table, r.incremental, r.rows_in_window) for r in first] == [(TABLE, False, total)]

    offline = newest_offline(spark, path)
    online = get_online_features(config, TABLE, [{"customer_id": k} for k in sorted(offline)])
    assert len(online) == len(offline) > 0
    for row in online:
        assert row["found"], row
        assert_same(row, offline[row["customer_id"]])
        expected_ts = offline[row["customer_id"]]["week_end"].replace(tzinfo=timezone.utc)
        assert datetime.fromisoformat(row["event_timestamp"]) == expected_ts

    # New data: a later week for three customers. Old data changed in place (customer
    # `stale`, at a timestamp the first run already covered) must NOT move: incremental
    # runs only read the window after the previous end.
    keys = sorted(offline)
    new_keys, stale = keys[:3], keys[3]
    new_rows = [(k, NEW_WEEK, 100 + i, 1000.0 + i, 10.0 + i, 0.5) for i, k in enumerate(new_keys)]
    schema = spark.read.format("delta").load(path).schema
    spark.createDataFrame(new_rows, schema).write.format("delta").mode("append").save(path)
    DeltaTable.forPath(spark, path).update(
        condition=(F.col("customer_id") == stale) & (F.col("week_end") == offline[stale]["week_end"]),
        set={"spend_7d": F.lit(-1.0)},
    )

    second = materialize(spark, config, [TABLE], SECOND_END)
    assert len(second) == 1
    result = second[0]
    assert result.incremental and result.start == FIRST_END and result.end == SECOND_END
    assert (result.rows_in_window, result.keys_in_window) == (3, 3)

    after = {r["customer_id"]: r for r in get_online_features(config, TABLE, [{"customer_id": k} for k in keys])}
    for i, k in enumerate(new_keys):
        assert after[k]["txn_count_7d"] == 100 + i
        assert after[k]["spend_7d"] == 1000.0 + i
        assert datetime.fromisoformat(after[k]["event_timestamp"]) == NEW_WEEK
    assert after[stale]["spend_7d"] == offline[stale]["spend_7d"] != -1.0
    for k in keys[4:]:
        assert_same(after[k], offline[k])

    # A third run up to the same end has nothing left to move.
    third = materialize(spark, config, [TABLE], SECOND_END)
    assert (third[0].rows_in_window, third[0].incremental) == (0, True)

    # A full run loads every row again: the value changed in place reaches the online store.
    full = materialize(spark, config, [TABLE], SECOND_END, full=True)
    assert (full[0].incremental, full[0].start, full[0].rows_in_window) == (False, EPOCH, total + 3)
    assert get_online_features(config, TABLE, [{"customer_id": stale}])[0]["spend_7d"] == -1.0


@pytest.mark.slow
def test_online_features_cli_prints_json(online_project, capsys):
    config_file = str(Path(online_project.base_dir) / "featurelake.yaml")
    code = online_job.main(["--config", config_file, "--table", TABLE, "--key", "customer_id=1",
                            "--key", "customer_id=999999", "--features", "spend_7d"])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert out["table"] == TABLE
    assert [r["customer_id"] for r in out["rows"]] == [1, 999999]
    assert out["rows"][1] == {"customer_id": 999999, "spend_7d": None, "event_timestamp": None, "found": False}
    assert set(out["rows"][0]) == {"customer_id", "spend_7d", "event_timestamp", "found"}


def test_online_features_bad_input_exit_codes(online_project, capsys):
    config_file = str(Path(online_project.base_dir) / "featurelake.yaml")
    base = ["--config", config_file]
    assert online_job.main(base + ["--table", "no_such_table", "--key", "customer_id=1"]) == 3
    assert online_job.main(base + ["--table", TABLE, "--key", "customer=1"]) == 2
    assert online_job.main(base + ["--table", TABLE, "--key", "customer_id=abc"]) == 2
    assert online_job.main(base + ["--table", TABLE, "--key", "customer_id"]) == 2
    assert online_job.main(base + ["--table", TABLE, "--key", "customer_id=1", "--features", "nope"]) == 3
    err = capsys.readouterr().err
    assert "no_such_table" in err and "'customer_id' expects a int64 value" in err


def test_materialize_unknown_table_exit_code(spark, online_project, capsys):
    config_file = str(Path(online_project.base_dir) / "featurelake.yaml")
    assert materialize_job.main(["--config", config_file, "--tables", "missing_table"]) == 3
    assert materialize_job.main(["--config", config_file, "--end-date", "yesterday"]) == 2
    err = capsys.readouterr().err
    assert "missing_table" in err and "yesterday" in err


def test_materialize_a_registered_table_whose_delta_table_is_gone_exit_code(tmp_path, capsys):
    config = resolve_paths(Config(warehouse="warehouse"), tmp_path)
    register_tables(config, [next(t for t in FEATURE_TABLES if t.name == TABLE)])  # no Delta table written
    write_config(config, tmp_path / "featurelake.yaml")
    assert materialize_job.main(["--config", str(tmp_path / "featurelake.yaml")]) == 3
    assert (f"feature table '{TABLE}' is registered in Feast, but there is no Delta table at "
            f"{config.table_path(TABLE)}") in capsys.readouterr().err
