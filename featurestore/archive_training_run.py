"""The class-data archive's training run: one tiny build in a process of its own.

:func:`featurestore.class_data_archive.create_archive` starts it as
``python -m featurestore.archive_training_run CONFIG``; the configuration tells the driver JVM
to write the archive when it exits.
"""

from __future__ import annotations

import logging
import sys

from featurestore.build import build_features
from featurestore.config import load_config
from featurestore.spark_session import get_spark


def run_training_build(config_path: str) -> None:
    """Build every table of the project at ``config_path`` (small input: the quick-start JVM)."""
    config = load_config(config_path)
    spark = get_spark(config, small_input=True)
    build_features(spark, config)
    spark.stop()


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    run_training_build(sys.argv[1])
