"""The end-to-end demo: synthetic data -> feature tables -> Feast (later steps join here).

Everything the demo writes stays under one work directory::

    DIR/featurelake.yaml   configuration pointing at the folders below
    DIR/raw/               synthetic source data (parquet)
    DIR/warehouse/         Delta tables
    DIR/feast_repo/        Feast repository (feature_store.yaml, registry, online store)
    DIR/mlflow.db          MLflow tracking and registry (SQLite)
    DIR/mlartifacts/       MLflow artifacts
"""

from __future__ import annotations

import logging
from pathlib import Path

from pyspark.sql import SparkSession

from jobs.demo.data import write_demo_data
from jobs.demo.lifecycle import configure_training, train_and_promote
from jobs.demo.scoring import score_demo_customers
from jobs.demo.monitoring_step import configure_monitoring, run_monitoring_demo
from featurestore.build import build_features
from featurestore.core.config import Config, load_config, write_config
from featurestore.delta_reader import DeltaReader
from featurestore.online import materialize
from inference.report.render import generate_report
from inference.settings import SECTIONS

logger = logging.getLogger(__name__)

CONFIG_FILE = "featurelake.yaml"
REPORT_DIR = "report"


def demo_config(workdir: Path) -> Config:
    """Return the demo's configuration, with every path inside ``workdir``."""
    config = Config(
        warehouse="warehouse",
        source_root=".",
        definitions="jobs.demo.feature_tables",
    )
    config.mlflow.tracking_uri = "sqlite:///mlflow.db"
    config.mlflow.artifact_location = "mlartifacts"
    config.feast.repo_path = "feast_repo"
    configure_training(config)
    configure_monitoring(config)
    return config


def prepare_workdir(workdir: str | Path, n_customers: int = 500) -> Config:
    """Write the synthetic data and the configuration file into ``workdir``; return the loaded config."""
    root = Path(workdir).resolve()
    root.mkdir(parents=True, exist_ok=True)
    write_demo_data(root / "raw", n_customers=n_customers)
    config_path = write_config(demo_config(root), root / CONFIG_FILE)
    return load_config(config_path, env={}, sections=SECTIONS)


def run_demo(spark: SparkSession, workdir: str | Path, n_customers: int = 500, monitor: bool = False,
             online: bool = False) -> Config:
    """Run every step of the demo in ``workdir`` and return its configuration."""
    config = prepare_workdir(workdir, n_customers)
    logger.info("demo data written under %s", workdir)
    build_features(spark, config)
    train_and_promote(spark, config)
    score_demo_customers(spark, config)
    if monitor:
        run_monitoring_demo(spark, config)
    if online:
        materialize(spark, config)
    generate_report(DeltaReader(lambda: spark, config.metadata_reader), config, Path(config.base_dir) / REPORT_DIR)
    return config
