"""Maintenance of feature tables by name; a vacuum asks the model registry and keeps what models need.

    vacuum_feature_table(spark, config, "customer_spend", retain_hours=168)
    optimize_feature_table(spark, config, "customer_spend")
    cluster_feature_table(spark, config, "customer_spend")     # clustered by its timestamp key from now on

A Staging or Production model version reproduces its training set from the Delta versions its
training-set spec names (``delta_version`` of each lookup), so a vacuum of a feature table keeps
the files of those versions whatever the retention asked (:func:`featurestore.maintenance.vacuum_table`).
"""

from __future__ import annotations

import logging

from pyspark.sql import SparkSession

from featurestore.catalog import describe_table
from featurestore.core.config import Config
from featurestore.delta_reader import session_reader
from featurestore.maintenance import (
    KeptVersion, OptimizeResult, VacuumResult, cluster_by_time, optimize_table, vacuum_table,
)
from inference.registry import protected_specs

logger = logging.getLogger(__name__)


def versions_models_need(config: Config, table: str) -> list[KeptVersion]:
    """Return the versions of feature table ``table`` that the training-set specs of Staging and
    Production model versions name, each with the model versions that need it, oldest first.

    Example::

        versions_models_need(config, "customer_spend")
        # [KeptVersion(version=3, reason='model churn_model version 2 (Production) reproduces its training set')]

    Raises:
        DependencyUnavailableError: the registry cannot be read (a vacuum must not run blind).
    """
    needers: dict[int, list[str]] = {}
    for protected in protected_specs(config):
        for lookup in protected.spec.lookups:
            if lookup.get("table") == table and lookup.get("delta_version") is not None:
                needers.setdefault(int(lookup["delta_version"]), []).append(protected.label)
    return [KeptVersion(version, "model " + ", ".join(sorted(set(labels))) + " reproduces its training set from it")
            for version, labels in sorted(needers.items())]


def vacuum_feature_table(spark: SparkSession, config: Config, name: str, retain_hours: float,
                         dry_run: bool = False) -> VacuumResult:
    """Vacuum feature table ``name``, keeping every file that a Staging or Production model needs.

    Example::

        result = vacuum_feature_table(spark, config, "customer_spend", 168, dry_run=True)
        result.deleted_files, result.kept, result.notes

    Raises:
        NotFoundError: no feature table ``name``.
        BadInputError: ``retain_hours`` negative or below the table's ``delta.deletedFileRetentionDuration``.
        DependencyUnavailableError: the model registry cannot be read (nothing deleted).
    """
    info = describe_table(session_reader(spark, config), config, name)
    keep = versions_models_need(config, name)
    return vacuum_table(spark, name, info.path, retain_hours, keep, dry_run)


def optimize_feature_table(spark: SparkSession, config: Config, name: str) -> OptimizeResult:
    """Compact feature table ``name`` and lay its files out by its timestamp key (:func:`optimize_table`).

    Example: ``optimize_feature_table(spark, config, "customer_spend").after.files``.

    Raises:
        NotFoundError: no feature table ``name``.
        ConflictError: concurrent writers kept conflicting.
    """
    info = describe_table(session_reader(spark, config), config, name)
    return optimize_table(spark, name, info.path, info.timestamp_key)


def cluster_feature_table(spark: SparkSession, config: Config, name: str) -> bool:
    """Switch feature table ``name`` to clustering by its timestamp key (:func:`cluster_by_time`);
    False when it is clustered so already.

    Example: ``cluster_feature_table(spark, config, "customer_spend")``, then ``optimize_feature_table``.

    Raises:
        NotFoundError: no feature table ``name``.
        BadInputError: the table is partitioned.
    """
    info = describe_table(session_reader(spark, config), config, name)
    return cluster_by_time(spark, name, info.path, info.timestamp_key)
