"""`tables vacuum` keeps what a Production model needs; `tables optimize` beside a concurrent build loses nothing."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest
from inference_support import log_model, make_config

from featurestore.core.errors import BadInputError, ConflictError, exit_code_for
from featurestore.definitions import FeatureTable, Field
from featurestore.delta_tables import read_version, table_history, write_feature_table
from featurestore.training_set import FeatureLookup, create_training_set
from inference.maintenance import cluster_feature_table, optimize_feature_table, vacuum_feature_table
from inference.registry import transition
from inference.tracking import client as mlflow_client

TABLE = FeatureTable(
    name="mt_spend",
    primary_keys=[Field("customer_id", "bigint", "Customer")],
    timestamp_key="event_time",
    features=[Field("spend", "double", "Spend of the day")],
    description="maintenance test table",
)
SCHEMA = "customer_id bigint, event_time timestamp, spend double"
CUSTOMERS = 30


def _day(day: int) -> datetime:
    return datetime(2026, 2, 1, tzinfo=timezone.utc) + timedelta(days=day - 1)


def _rows(spark, day: int, shift: float = 0.0):
    return spark.createDataFrame([(c, _day(day), c * 1.5 + shift) for c in range(CUSTOMERS)], SCHEMA)


def _files(spark, path: str, version: int | None = None) -> set[Path]:
    rows = spark.read.format("delta").load(path) if version is None else read_version(spark, path, version)
    return {Path(unquote(urlparse(f).path)) for f in rows.inputFiles()}


def test_vacuum_keeps_the_files_a_production_model_needs(spark, tmp_path):
    from sklearn.linear_model import LogisticRegression

    config = make_config(tmp_path)
    path = config.table_path(TABLE.name)
    write_feature_table(spark, TABLE, path, _rows(spark, 1))                         # version 0
    with pytest.raises(BadInputError, match="mt_spend.*retention"):   # Delta's safety check
        vacuum_feature_table(spark, config, TABLE.name, 0)
    spark.sql(f"ALTER TABLE delta.`{path}` SET TBLPROPERTIES ('delta.deletedFileRetentionDuration' = 'interval 0 hours')")

    labels = spark.createDataFrame([(c, _day(3), c % 2) for c in range(CUSTOMERS)],
                                   "customer_id bigint, label_time timestamp, label bigint")
    training = create_training_set(spark, config, labels, [FeatureLookup(TABLE.name, timestamp_lookup_key="label_time")],
                                   label="label")
    expected = sorted(training.df.collect())
    assert training.spec.delta_versions() == {TABLE.name: 1}
    pdf = training.df.toPandas()
    mlflow_client(config).create_registered_model("vacuum_model")
    _, version = log_model(config, "vacuum_model", LogisticRegression().fit(pdf[["spend"]], pdf["label"]),
                           pdf[["spend"]], spec=training.spec.to_dict())
    transition(config, "vacuum_model", version, "Production")
    needed = _files(spark, path, 1)

    write_feature_table(spark, TABLE, path, _rows(spark, 1, shift=1.0), mode="overwrite")   # version 2
    unneeded = _files(spark, path)
    write_feature_table(spark, TABLE, path, _rows(spark, 1, shift=2.0), mode="overwrite")   # version 3
    current = _files(spark, path)
    assert not needed & unneeded and not unneeded & current
    versions_before = len(table_history(spark, path))

    dry = vacuum_feature_table(spark, config, TABLE.name, 0, dry_run=True)
    assert {Path(path) / f for f in dry.deleted_files} == unneeded
    assert dry.kept_files == len(needed) and any("version 1" in n for n in dry.notes)
    assert [k.version for k in dry.kept] == [1] and "vacuum_model version 1 (Production)" in dry.kept[0].reason
    assert all(f.exists() for f in needed | unneeded | current)
    assert len(table_history(spark, path)) == versions_before     # a dry run commits nothing

    done = vacuum_feature_table(spark, config, TABLE.name, 0)
    assert {Path(path) / f for f in done.deleted_files} == unneeded
    assert all(f.exists() for f in needed | current) and not any(f.exists() for f in unneeded)
    assert len(table_history(spark, path)) == versions_before + 1  # the vacuum's record
    assert table_history(spark, path, 1)[0]["operation"] == "SET TBLPROPERTIES"
    assert "kept version 1" in (_last_user_metadata(spark, path) or "")

    again = create_training_set(spark, config, labels, training.spec.feature_lookups(),
                                label="label", delta_versions=training.spec.delta_versions())
    assert sorted(again.df.collect()) == expected                      # bit for bit, after the vacuum


def _last_user_metadata(spark, path: str) -> str | None:
    """The user metadata of the table's latest commit."""
    return spark.sql(f"DESCRIBE HISTORY delta.`{path}` LIMIT 1").first()["userMetadata"]


def test_clustered_table_optimized_beside_a_concurrent_build_loses_no_row(spark, tmp_path):
    config = make_config(tmp_path)
    path = config.table_path(TABLE.name)
    for day in (1, 2, 3):                                  # three MERGEs: several small files
        write_feature_table(spark, TABLE, path, _rows(spark, day))
    assert cluster_feature_table(spark, config, TABLE.name) is True      # the one command that switches it
    assert cluster_feature_table(spark, config, TABLE.name) is False
    files_before = len(_files(spark, path))
    outcomes: dict[str, object] = {}
    start = threading.Barrier(2)

    def run(name, call):
        start.wait()
        try:
            outcomes[name] = call()
        except ConflictError as exc:                     # the clean failure: exit 4
            outcomes[name] = exc

    threads = [threading.Thread(target=run, args=("build", lambda: write_feature_table(spark, TABLE, path,
                                                                                    _rows(spark, 4)))),
               threading.Thread(target=run, args=("optimize", lambda: optimize_feature_table(spark, config,
                                                                                         TABLE.name)))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert set(outcomes) == {"build", "optimize"}
    for name, outcome in outcomes.items():
        if isinstance(outcome, Exception):
            assert exit_code_for(outcome) == 4, f"{name}: {outcome}"
    assert not all(isinstance(o, Exception) for o in outcomes.values())
    rows = sorted(tuple(r) for r in spark.read.format("delta").load(path).collect())
    build_done = not isinstance(outcomes["build"], Exception)
    wanted = sorted(tuple(r) for day in ((1, 2, 3, 4) if build_done else (1, 2, 3))
                    for r in _rows(spark, day).collect())
    assert rows == wanted
    operations = [h["operation"] for h in table_history(spark, path)]
    assert ("MERGE" in operations) == build_done
    if not isinstance(outcomes["optimize"], Exception):
        assert "OPTIMIZE" in operations and outcomes["optimize"].files_removed >= files_before
        assert outcomes["optimize"].layout == "clustered by event_time"
