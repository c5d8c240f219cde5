"""The feature build: read sources, run the transformation, validate, write, register."""

from __future__ import annotations

import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from pyspark.errors import AnalysisException
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.types import StructField, StructType, _parse_datatype_string

from featurestore.catalog import describe_table
from featurestore.delta_reader import session_reader
from featurestore.core.config import Config, is_uri
from featurestore.data_files import read_data_files
from featurestore.definitions import FeatureTable, Source, load_definitions, select_tables
from featurestore.delta_tables import (
    WRITE_MODES, WriteResult, check_table_columns, retry_on_conflict, sync_metadata, table_exists,
    write_feature_table,
)
from featurestore.core.errors import BadInputError, ConflictError, NotFoundError
from featurestore.feast_repo import check_registry, register_tables, unregister_table
from featurestore.runtime.progress import progress
from featurestore.runtime.spark_session import SMALL_INPUT_BYTES, local_paths_are_small
from featurestore.runtime.storage import remove_folder
from featurestore.validation import ValidatedFrame, validate_feature_frame

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class BuildResult:
    """The outcome of building one feature table."""

    write: WriteResult
    seconds: float


def source_location(config: Config, source: Source) -> str:
    """Return where ``source`` is read from: absolute paths and URIs as given, else under ``source_root``."""
    if is_uri(source.path) or os.path.isabs(source.path):
        return source.path
    return os.path.join(config.source_root, source.path)


def read_sources(spark: SparkSession, config: Config, table: FeatureTable) -> dict[str, DataFrame]:
    """Read every source of ``table``; an unreadable one raises an error naming table and path."""
    return {source.name: read_data_files(spark, source_location(config, source),
                                         f"table {table.name!r}: source {source.name!r}", source.format,
                                         source.options)
            for source in table.sources}


def compute_table(spark: SparkSession, config: Config, table: FeatureTable) -> ValidatedFrame:
    """Run the transformation of ``table`` on its sources and return the validated result (and its row count)."""
    if table.transform is None:
        raise BadInputError(f"table {table.name!r} has no transformation")
    inputs = read_sources(spark, config, table)
    try:
        df = table.transform(spark, inputs)
    except KeyError as exc:
        if not exc.args or exc.args[0] in inputs:
            raise
        raise BadInputError(f"table {table.name!r}: the transformation reads source {exc.args[0]!r}, which the "
                            f"definition does not declare (its sources: {', '.join(map(repr, inputs)) or 'none'})"
                            ) from exc
    except AnalysisException as exc:  # an unknown column or function, a type error: Spark analyses eagerly
        raise BadInputError(f"table {table.name!r}: the transformation failed: {str(exc).splitlines()[0]}") from exc
    if not isinstance(df, DataFrame):
        raise BadInputError(f"table {table.name!r}: the transformation returned {type(df).__name__}, not a DataFrame")
    return validate_feature_frame(table, df)


def build_table(spark: SparkSession, config: Config, table: FeatureTable) -> BuildResult:
    """Compute, validate and write one feature table (no Feast registration)."""
    started = time.monotonic()
    computed = compute_table(spark, config, table)
    result = write_feature_table(spark, table, config.table_path(table.name), computed.df, rows=computed.rows,
                                 time_range=computed.time_range)
    return BuildResult(result, time.monotonic() - started)


def load_project_tables(config: Config) -> dict[str, FeatureTable]:
    """Load the feature-table definitions the configuration points at."""
    if not config.definitions:
        raise BadInputError("no feature-table definitions configured (set 'definitions' in the configuration)")
    return load_definitions(config.definitions, config.base_dir)


def build_features(spark: SparkSession, config: Config, names: list[str] | None = None) -> list[BuildResult]:
    """Build the named feature tables (all when None) and register them in Feast."""
    return build_tables(spark, config, select_tables(load_project_tables(config), names))


def build_tables(spark: SparkSession, config: Config, tables: list[FeatureTable]) -> list[BuildResult]:
    """Build ``tables`` and register them in Feast.

    Every table is computed and validated before any is written, so a bad table stops the
    build with no table changed. A broken Feast registry stops the build before anything
    is written. The registry check (which imports Feast: seconds of CPU) runs in a thread
    while Spark computes the tables, so its cost overlaps the Spark work. The writes then
    go through :func:`write_validated`.
    """
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="feast-check") as pool:
        registry_checked = pool.submit(check_registry, config)
        computed = []
        for table in tables:
            started = time.monotonic()
            with progress(spark, f"computing {table.name}"):
                computed.append(ComputedTable(table, compute_table(spark, config, table), time.monotonic() - started))
        registry_checked.result()  # raises the registry's error before the first write
    return write_validated(spark, config, computed)


@dataclass(frozen=True)
class ComputedTable:
    """A feature table's definition, its validated rows and the seconds spent computing them."""

    table: FeatureTable
    frame: ValidatedFrame
    seconds: float = 0.0


def write_validated(spark: SparkSession, config: Config, computed: list[ComputedTable],
                    mode: str = "merge") -> list[BuildResult]:
    """Write validated tables to Delta one by one, then register them all in Feast.

    A write that fails (a row the transformation cannot compute, storage) stops there; the
    tables written before it are registered, so that Feast and the warehouse agree.
    """
    results: list[BuildResult] = []
    for item in computed:
        started = time.monotonic()
        try:
            with progress(spark, f"writing {item.table.name}"):
                result = write_feature_table(spark, item.table, config.table_path(item.table.name), item.frame.df,
                                             rows=item.frame.rows, time_range=item.frame.time_range, mode=mode)
        except Exception:
            written = [c.table for c in computed[:len(results)]]
            logger.error("table %s: the write failed; tables written before it: %s", item.table.name,
                         ", ".join(t.name for t in written) or "none")
            if written:
                register_tables(config, written)
            raise
        results.append(BuildResult(result, item.seconds + time.monotonic() - started))
    register_tables(config, [c.table for c in computed])
    return results


def write_table(spark: SparkSession, config: Config, table: FeatureTable, df: DataFrame,
                mode: str = "merge") -> BuildResult:
    """Write a ready DataFrame as feature table ``table``, exactly as ``featurelake build`` writes a table.

    ``df`` is validated against the definition (columns, types, null or duplicate keys) before
    anything is written; the table is created on first write with its metadata, else its
    metadata is kept in step and ``df`` is merged (``mode="merge"``: upsert on keys plus
    timestamp) or replaces every row (``mode="overwrite"``), one commit either way, conflicts
    retried; then the table is registered in Feast. A broken Feast registry stops the write first.

    Example::

        write_table(spark, config, customer_spend, spend_df)          # customer_spend: a FeatureTable

    Raises:
        BadInputError: ``df`` does not match the definition; nothing is written.
        ConflictError: concurrent writers kept conflicting.
        DependencyUnavailableError: the Feast registry or the storage cannot be used.
    """
    if mode not in WRITE_MODES:
        raise BadInputError(f"table {table.name!r}: write mode must be one of {', '.join(WRITE_MODES)}, got {mode!r}")
    if not isinstance(df, DataFrame):
        raise BadInputError(f"table {table.name!r}: expected a Spark DataFrame, got {type(df).__name__}")
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="feast-check") as pool:
        registry_checked = pool.submit(check_registry, config)
        frame = validate_feature_frame(table, df)
        registry_checked.result()
    return write_validated(spark, config, [ComputedTable(table, frame, time.monotonic() - started)], mode)[0]


def create_table(spark: SparkSession, config: Config, table: FeatureTable, df: DataFrame | None = None) -> BuildResult:
    """Create feature table ``table`` (refused when it exists), with the rows of ``df`` or none.

    The rows go through :func:`write_table`, the build's own path: validated, written in one
    commit with the table's metadata, registered in Feast.

    Example::

        create_table(spark, config, table_from_schema("customer_spend", df.schema, ["customer_id"], "day"), df)

    Raises:
        ConflictError: a Delta table already exists at the table's path.
    """
    path = config.table_path(table.name)
    if table_exists(spark, path):
        raise ConflictError(f"feature table {table.name!r} already exists at {path}; write to it with "
                            "write_table, or drop it first")
    if df is None:
        df = spark.createDataFrame([], StructType([StructField(c.name, _parse_datatype_string(c.dtype))
                                                   for c in table.columns]))
    return write_table(spark, config, table, df)


def update_metadata(spark: SparkSession, config: Config, table: FeatureTable) -> bool:
    """Bring the Delta metadata and the Feast registration of the existing table in step with ``table``.

    No row is written (a tag or description change). Returns True if the Delta metadata changed.

    Example::

        update_metadata(spark, config, replace(table, tags={**table.tags, "team": "growth"}))
    """
    path = config.table_path(table.name)
    if not table_exists(spark, path):
        raise NotFoundError(f"feature table {table.name!r} not found in warehouse {config.warehouse}")
    check_table_columns(spark, table, path)
    changed = retry_on_conflict(lambda: sync_metadata(spark, table, path), f"table {table.name!r}", path)
    register_tables(config, [table])
    return changed


def drop_table(spark: SparkSession, config: Config, name: str) -> None:
    """Remove feature table ``name``: its Feast registration (feature view, online values), then its Delta folder.

    Nothing checks who still reads the table: the model registry's guard is
    :func:`inference.registry.drop_feature_table`, which the client and ``featurelake tables drop`` call.

    Raises:
        NotFoundError: no feature table ``name`` in the warehouse.
    """
    path = describe_table(session_reader(spark, config), config, name).path
    unregister_table(config, name)
    remove_folder(spark, path)
    logger.info("dropped feature table %s (%s)", name, path)


def sources_are_small(config: Config, tables: list[FeatureTable], limit: int = SMALL_INPUT_BYTES) -> bool:
    """True when every source of ``tables`` is a local file or folder and together they hold <= ``limit`` bytes.

    A remote source (a URI) or a missing path counts as large: its size is not known here.
    """
    return local_paths_are_small((source_location(config, s) for t in tables for s in t.sources), limit)
