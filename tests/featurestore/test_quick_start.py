"""Session configuration for quick start and the class-data archive, and the small-input rule."""

from __future__ import annotations

from pathlib import Path

import pytest

from featurestore.runtime import cache_folder, class_data_archive
from featurestore.build import sources_are_small
from featurestore.core.config import Config, SparkSettings, resolve_paths
from featurestore.definitions import FeatureTable, Field, Source
from featurestore.core.errors import BadInputError
from featurestore.runtime.spark_session import (
    PYTHON_DAEMON_MODULE_CONF, QUICK_START_CONF, QUICK_START_JAVA_OPTIONS, session_conf,
)


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv(cache_folder.CACHE_DIR_ENV, str(folder))
    return folder


def test_quick_start_only_when_asked_for_or_small_and_local(cache: Path) -> None:
    auto = SparkSettings(master="local[2]")
    assert QUICK_START_JAVA_OPTIONS in session_conf(auto, small_input=True)["spark.driver.extraJavaOptions"]
    assert QUICK_START_CONF.items() <= session_conf(auto, small_input=True).items()
    assert "spark.driver.extraJavaOptions" not in session_conf(auto, small_input=False)
    assert not set(QUICK_START_CONF) & set(session_conf(auto, small_input=False))
    never = SparkSettings(master="local[2]", quick_start="never")
    assert "spark.driver.extraJavaOptions" not in session_conf(never, small_input=True)
    always = SparkSettings(master="local[2]", quick_start="always")
    assert QUICK_START_JAVA_OPTIONS in session_conf(always)["spark.driver.extraJavaOptions"]
    cluster = SparkSettings(master="spark://head:7077", quick_start="always")
    assert "spark.driver.extraJavaOptions" not in session_conf(cluster, small_input=True)


def test_user_conf_wins_over_quick_start(cache: Path) -> None:
    settings = SparkSettings(master="local[2]", quick_start="always",
                             conf={"spark.driver.extraJavaOptions": "-XX:+UseG1GC",
                                   "spark.sql.codegen.wholeStage": "true"})
    conf = session_conf(settings)
    # JVM options: ours first, the user's last (the JVM takes the last of conflicting flags)
    assert conf["spark.driver.extraJavaOptions"].endswith("-XX:+UseG1GC")
    assert conf["spark.driver.extraJavaOptions"].startswith(QUICK_START_JAVA_OPTIONS)
    assert conf["spark.sql.codegen.wholeStage"] == "true"
    assert set(QUICK_START_CONF) <= set(conf)


def test_archive_is_mapped_once_a_training_run_wrote_it(cache: Path, tmp_path: Path) -> None:
    settings = SparkSettings(master="local[2]")
    assert "spark.driver.extraJavaOptions" not in session_conf(settings)
    path = class_data_archive.archive_path()
    assert path is not None and path.parent == cache
    written = tmp_path / "written.jsa"
    written.write_bytes(b"archive bytes")  # install_archive only moves the file into place
    assert class_data_archive.install_archive(written) == path
    options = session_conf(settings)["spark.driver.extraJavaOptions"]
    assert f"-XX:SharedArchiveFile={path}" in options
    # a training run (which writes an archive itself) is not given ours
    dumping = SparkSettings(master="local[2]", conf={"spark.driver.extraJavaOptions": "-XX:ArchiveClassesAtExit=x"})
    assert session_conf(dumping)["spark.driver.extraJavaOptions"] == "-XX:ArchiveClassesAtExit=x"


def test_a_session_writes_an_archive_only_where_there_is_none(cache: Path) -> None:
    dump_to = class_data_archive.dump_path()
    assert dump_to is not None and dump_to.parent == cache and dump_to.name.endswith(".dump")
    options = session_conf(SparkSettings(master="local[2]"), write_archive_to=dump_to)["spark.driver.extraJavaOptions"]
    assert f"-XX:ArchiveClassesAtExit={dump_to}" in options and "SharedArchiveFile" not in options
    # the user's own class-data options win: nothing written
    assert class_data_archive.dump_path("-XX:SharedArchiveFile=/elsewhere.jsa") is None
    dump_to.write_bytes(b"archive bytes")
    class_data_archive.install_archive(dump_to)
    assert class_data_archive.dump_path() is None  # one exists now
    assert class_data_archive.dump_path(replace=True) is not None  # featurelake warmup replaces it


def test_a_dump_left_by_a_process_that_is_gone_is_removed(cache: Path) -> None:
    target = class_data_archive.archive_path()
    assert target is not None
    cache.mkdir(parents=True)
    gone, running = target.with_name(f"{target.name}.999999999.dump"), target.with_name(f"{target.name}.1.dump")
    gone.write_bytes(b"half written")
    running.write_bytes(b"being written")  # pid 1 runs
    class_data_archive.dump_path()
    assert not gone.exists() and running.exists()


def test_install_refuses_a_missing_or_empty_archive(cache: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty.jsa"
    empty.write_bytes(b"")
    for written in (tmp_path / "missing.jsa", empty):
        with pytest.raises(FileNotFoundError, match="no class-data archive"):
            class_data_archive.install_archive(written)
    assert class_data_archive.existing_archive() is None


def test_quick_start_setting_is_checked() -> None:
    with pytest.raises(BadInputError, match="spark.quick_start must be one of auto, always, never"):
        SparkSettings(quick_start="sometimes")


def _table(*paths: str) -> FeatureTable:
    return FeatureTable(name="t", primary_keys=[Field("id", "bigint", "id")], timestamp_key="ts",
                        features=[Field("x", "double", "x")],
                        sources=[Source(f"s{i}", p) for i, p in enumerate(paths)])


def test_small_input_is_local_and_under_the_limit(tmp_path: Path) -> None:
    config = resolve_paths(Config(source_root="."), tmp_path)
    (tmp_path / "a.parquet").write_bytes(b"x" * 100)
    folder = tmp_path / "b"
    folder.mkdir()
    (folder / "part-0.parquet").write_bytes(b"x" * 100)
    assert sources_are_small(config, [_table("a.parquet", "b")], limit=200)
    assert not sources_are_small(config, [_table("a.parquet", "b")], limit=199)
    assert not sources_are_small(config, [_table("missing.parquet")])
    assert not sources_are_small(config, [_table("s3a://bucket/events")])


def test_a_batch_to_score_is_small_when_the_warehouse_and_the_entities_are(tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from featurestore.runtime.spark_session import local_paths_are_small
    from inference.batch import input_locations

    monkeypatch.chdir(tmp_path)  # the job reads an input path from where it runs
    config = resolve_paths(Config(warehouse="warehouse"), tmp_path)
    table = tmp_path / "warehouse" / "customer_profile"
    table.mkdir(parents=True)
    (table / "part-0.parquet").write_bytes(b"x" * 100)
    (tmp_path / "entities.parquet").write_bytes(b"x" * 100)
    assert input_locations(config, "entities.parquet") == [config.warehouse, "entities.parquet"]
    assert input_locations(config, "customer_profile") == [config.warehouse]  # a warehouse table
    assert local_paths_are_small(input_locations(config, "entities.parquet"), limit=200)
    assert not local_paths_are_small(input_locations(config, "entities.parquet"), limit=199)
    assert local_paths_are_small(input_locations(config, "customer_profile"), limit=100)
    assert not local_paths_are_small(input_locations(config, "missing.parquet"))
    assert not local_paths_are_small(input_locations(config, "abfss://data@account.dfs.core.windows.net/entities"))
    remote = resolve_paths(Config(warehouse="abfss://lake@account.dfs.core.windows.net/warehouse"), tmp_path)
    assert not local_paths_are_small(input_locations(remote, "entities.parquet"))


def test_a_file_under_two_locations_counts_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from featurestore.runtime.spark_session import local_paths_are_small

    monkeypatch.chdir(tmp_path)
    table = tmp_path / "warehouse" / "customer_profile"
    table.mkdir(parents=True)
    (table / "part-0.parquet").write_bytes(b"x" * 100)
    # spark-submit.sh's rule for a local master: the warehouse and the source root, here its parent.
    assert local_paths_are_small([str(tmp_path / "warehouse"), "."], limit=100)
    assert local_paths_are_small(["warehouse", str(tmp_path)], limit=100)
    (tmp_path / "labels.parquet").write_bytes(b"x")
    assert not local_paths_are_small([str(tmp_path / "warehouse"), "."], limit=100)


def test_input_size_matters_only_where_featurelake_starts_a_local_session(monkeypatch: pytest.MonkeyPatch) -> None:
    from pyspark.sql import SparkSession

    from featurestore.runtime.spark_session import input_size_matters

    monkeypatch.delenv("PYSPARK_GATEWAY_PORT", raising=False)
    monkeypatch.setattr(SparkSession, "getActiveSession", staticmethod(lambda: None))  # no test session here
    assert input_size_matters(SparkSettings(master="local[2]"))
    assert not input_size_matters(SparkSettings(master="local[2]", quick_start="never"))
    assert not input_size_matters(SparkSettings(master="local[2]", quick_start="always"))
    assert not input_size_matters(SparkSettings(master="spark://head:7077"))
    monkeypatch.setenv("PYSPARK_GATEWAY_PORT", "12345")  # started by spark-submit: its session is adopted
    assert not input_size_matters(SparkSettings(master="local[2]"))


@pytest.mark.slow
def test_a_job_leaves_no_spark_warehouse_folder_in_the_working_directory(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    config = class_data_archive.write_tiny_project(tmp_path / "project")
    work = tmp_path / "work"
    work.mkdir()
    env = {**os.environ, cache_folder.CACHE_DIR_ENV: str(tmp_path / "cache"),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(Path(__file__).parents[2]), os.environ.get("PYTHONPATH")]))}
    env.pop("PYSPARK_GATEWAY_PORT", None)
    build = subprocess.run([sys.executable, "-m", "jobs.build_features", "--config", str(config)], cwd=work, env=env,
                           capture_output=True, text=True)
    assert build.returncode == 0, build.stderr[-3000:]
    assert list(work.iterdir()) == []  # Spark's default was ./spark-warehouse, left empty by every job
    assert (tmp_path / "cache" / "spark-warehouse").is_dir()


def test_a_session_that_scores_names_its_python_worker_daemon_and_the_user_conf_wins(cache: Path) -> None:
    settings = SparkSettings(master="local[2]")
    assert PYTHON_DAEMON_MODULE_CONF not in session_conf(settings)  # PySpark's own daemon
    warm = session_conf(settings, python_daemon_module="inference.worker_daemon")
    assert warm[PYTHON_DAEMON_MODULE_CONF] == "inference.worker_daemon"
    mine = SparkSettings(master="local[2]", conf={PYTHON_DAEMON_MODULE_CONF: "my.daemon"})
    assert session_conf(mine, python_daemon_module="inference.worker_daemon")[PYTHON_DAEMON_MODULE_CONF] == "my.daemon"
