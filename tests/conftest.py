"""Shared fixtures: one local Spark session for the whole run, and per-test project folders."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from featurestore.core.config import Config, resolve_paths
from featurestore.runtime.spark_session import get_spark
from inference.worker_daemon import WORKER_DAEMON_MODULE

# Python workers must run this interpreter (with pandas, mlflow, the package under test).
os.environ["PYSPARK_PYTHON"] = sys.executable
os.environ["PYSPARK_DRIVER_PYTHON"] = sys.executable


@pytest.fixture(scope="session")
def spark():
    """One Delta-capable local Spark session shared by every test."""
    config = Config()
    config.spark.master = "local[2]"
    config.spark.app_name = "featurelake-tests"
    config.spark.quick_start = "always"  # many tiny queries: quick-start options cost less CPU
    config.spark.conf = {"spark.sql.shuffle.partitions": "2", "spark.default.parallelism": "2"}
    session = get_spark(config, python_daemon_module=WORKER_DAEMON_MODULE)  # as predict's: workers start warm
    yield session
    session.stop()


def make_config(root: Path, definitions: str | None = None) -> Config:
    """A configuration whose warehouse, Feast repo and MLflow store all live under ``root``."""
    config = Config(warehouse="warehouse", source_root=".", definitions=definitions)
    config.spark.master = "local[2]"
    config.mlflow.tracking_uri = "sqlite:///mlflow.db"
    return resolve_paths(config, root)


@pytest.fixture
def project(tmp_path: Path) -> Config:
    """A fresh, empty project under a temporary folder."""
    return make_config(tmp_path)


@pytest.fixture(scope="session")
def demo_project(spark, tmp_path_factory) -> Config:
    """The demo's data and feature tables, built once for the session (read-only for tests)."""
    from jobs.demo.pipeline import prepare_workdir
    from featurestore.build import build_features

    config = prepare_workdir(tmp_path_factory.mktemp("demo"), n_customers=120)
    build_features(spark, config)
    return config



# Files whose tests take minutes. They are collected first, so that under the test command's
# `-n 2 --dist loadfile --no-loadscope-reorder` each pytest-xdist worker starts with one of them
# and the short files fill in around them, instead of the docs tour starting last.
LONG_FILES = ("tests/test_docs_commands.py", "tests/cluster/test_cluster_jobs.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        path = item.nodeid.split("::")[0]
        return LONG_FILES.index(path) if path in LONG_FILES else len(LONG_FILES)

    items.sort(key=rank)  # stable: the order within and after them is pytest's
