"""Faults and recovery for feature tables: kills, concurrent writers, schema change, time travel."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from featurestore.build import build_features, build_table, read_sources
from featurestore.core.config import write_config
from featurestore.definitions import Field
from featurestore.delta_tables import current_version, restore_table, table_history, write_feature_table
from featurestore.core.errors import BadInputError, ConflictError, DependencyUnavailableError, NotFoundError
from featurestore.validation import validate_feature_frame
from tests.featurestore.sample_tables import ROWS, T0, fails_on_user_2, passthrough, user_table, write_source


def test_history_and_restore_bring_back_a_known_good_version(spark, project):
    root = Path(project.source_root)
    write_source(root, ROWS)
    table = user_table()
    good = build_table(spark, project, table).write.version_after
    write_source(root, [(1, T0, 999, 9.9)])
    build_table(spark, project, table)
    path = project.table_path(table.name)
    assert spark.read.format("delta").load(path).filter("clicks = 999").count() == 1

    restored = restore_table(spark, path, good)
    assert restored == good + 2
    assert spark.read.format("delta").load(path).filter("clicks = 999").count() == 0
    assert table_history(spark, path, 1)[0]["operation"] == "RESTORE"
    with pytest.raises(NotFoundError, match="no version 99"):
        restore_table(spark, path, 99)


def test_new_column_needs_allow_new_columns(spark, project):
    write_source(Path(project.source_root), ROWS)
    build_table(spark, project, user_table())
    features = [Field("clicks", "bigint"), Field("spend", "double"), Field("spend_x2", "double", "Twice spend")]

    def with_new(s, i):
        return passthrough(s, i).withColumn("spend_x2", F.col("spend") * 2)

    with pytest.raises(BadInputError, match="new column 'spend_x2'.*allow_new_columns"):
        build_table(spark, project, user_table(features=features, transform=with_new))
    result = build_table(spark, project, user_table(features=features, transform=with_new, allow_new_columns=True))
    assert result.write.rows_updated == 3  # the new column is filled on existing rows
    df = spark.read.format("delta").load(project.table_path("user_activity"))
    assert sorted(r.spend_x2 for r in df.collect()) == [0.0, 3.0, 5.0]


def test_concurrent_builds_of_one_table_commit_without_duplicates(spark, project):
    write_source(Path(project.source_root), ROWS)
    table = user_table()
    build_table(spark, project, table)
    errors: list[BaseException] = []

    def build() -> None:
        try:
            build_table(spark, project, table)
        except BaseException as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    write_source(Path(project.source_root), [(u, T0 + timedelta(hours=h), h, 1.0)
                                             for u in range(1, 6) for h in range(4)])
    threads = [threading.Thread(target=build) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    df = spark.read.format("delta").load(project.table_path(table.name))
    assert df.count() == 20
    assert df.groupBy("user_id", "ts").count().filter("count > 1").count() == 0


def test_corrupt_feast_registry_stops_the_build_before_writing(spark, project, tmp_path):
    write_source(Path(project.source_root), ROWS)
    definitions = tmp_path / "defs.py"
    definitions.write_text("from tests.featurestore.sample_tables import user_table\nFEATURE_TABLES = [user_table()]\n")
    project.definitions = str(definitions)
    registry = Path(project.feast.repo_path) / "data" / "registry.db"
    registry.parent.mkdir(parents=True)
    registry.write_bytes(b"\x00not a registry\xff" * 10)
    with pytest.raises(DependencyUnavailableError, match="Feast registry"):
        build_features(spark, project)
    assert current_version(spark, project.table_path("user_activity")) is None


def test_unwritable_storage_is_a_dependency_error_and_writes_nothing(spark, project):
    write_source(Path(project.source_root), ROWS)
    blocker = Path(project.warehouse).parent / "not_a_folder"
    blocker.write_text("a file where the warehouse folder should be")
    project.warehouse = str(blocker)
    with pytest.raises(DependencyUnavailableError, match="'user_activity': storage at .*not_a_folder"):
        build_table(spark, project, user_table())
    assert blocker.read_text() == "a file where the warehouse folder should be"


def test_a_first_build_that_fails_while_writing_leaves_no_folder_and_the_next_build_creates_the_table(spark, project):
    write_source(Path(project.source_root), ROWS)
    path = Path(project.table_path("user_activity"))
    with pytest.raises(Exception, match="no spend for user 2"):
        build_table(spark, project, user_table(transform=fails_on_user_2))
    assert not path.exists()
    result = build_table(spark, project, user_table())
    assert result.write.created and result.write.rows_inserted == 3


def test_files_of_a_killed_first_build_are_named_as_what_stops_the_create(spark, project):
    write_source(Path(project.source_root), ROWS)
    table = user_table()
    path = Path(project.table_path(table.name))
    (path / "_delta_log" / "_staged_commits").mkdir(parents=True)  # what a create killed before its commit leaves
    (path / "part-00000-killed.snappy.parquet").write_bytes(b"PAR1")
    computed = validate_feature_frame(table, passthrough(spark, read_sources(spark, project, table)))
    with pytest.raises(ConflictError, match=f"'user_activity': {path} holds files but no Delta table.*remove the folder"):
        write_feature_table(spark, table, str(path), computed.df, max_attempts=1, rows=computed.rows)
    assert current_version(spark, str(path)) is None


SLOW_DEFINITIONS = """
import time
from pyspark.sql import functions as F
from tests.featurestore.sample_tables import passthrough, user_table

@F.udf("double")
def slow(value):
    time.sleep(0.3)
    return value

def slow_transform(spark, inputs):
    df = passthrough(spark, inputs).repartition(4)
    return df.withColumn("spend", slow(F.col("spend")) + F.lit(100.0))

FEATURE_TABLES = [user_table(transform=slow_transform)]
"""


def _data_files(path: Path) -> set[str]:
    return {p.name for p in path.glob("*.parquet")}


@pytest.mark.slow
def test_build_killed_mid_write_leaves_table_as_before_and_rerun_completes(spark, project, tmp_path):
    root = Path(project.source_root)
    write_source(root, [(u, T0, u, float(u)) for u in range(1, 41)])
    table = user_table()
    build_table(spark, project, table)
    path = Path(project.table_path(table.name))
    version, files_before = current_version(spark, str(path)), _data_files(path)

    (tmp_path / "slow_defs.py").write_text(textwrap.dedent(SLOW_DEFINITIONS))
    project.definitions = str(tmp_path / "slow_defs.py")
    config_file = write_config(project, tmp_path / "featurelake.yaml")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    process = subprocess.Popen([sys.executable, "-m", "jobs.build_features", "--config", str(config_file)],
                               env=env, start_new_session=True, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline and _data_files(path) == files_before and process.poll() is None:
            time.sleep(0.05)
        assert process.poll() is None, "the build finished before it could be killed"
        assert _data_files(path) != files_before, "the build never started writing"
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(30)

    assert current_version(spark, str(path)) == version
    before = spark.read.format("delta").load(str(path))
    assert before.count() == 40 and before.filter("spend >= 100").count() == 0

    build_features(spark, project)  # the rerun completes the interrupted run
    after = spark.read.format("delta").load(str(path))
    assert after.count() == 40
    assert after.filter("spend >= 100").count() == 40
