"""The feature build: read sources, run the transformation, validate, write, register."""

from __future__ import annotations

import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from pyspark.errors import AnalysisException
from pyspark.sql import DataFrame, SparkSession

from featurestore.core.config import Config, is_uri
from featurestore.data_files import read_data_files
from featurestore.definitions import FeatureTable, Source, load_definitions, select_tables
from featurestore.delta_tables import WriteResult, write_feature_table
from featurestore.core.errors import BadInputError
from featurestore.feast_repo import check_registry, register_tables
from featurestore.runtime.spark_session import SMALL_INPUT_BYTES, local_paths_are_small
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
    while Spark computes the tables, so its cost overlaps the Spark work. A write that fails
    (a row the transformation cannot compute, storage) stops the build; the tables written
    before it are registered, so that Feast and the warehouse agree.
    """
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="feast-check") as pool:
        registry_checked = pool.submit(check_registry, config)
        computed = []
        for table in tables:
            started = time.monotonic()
            computed.append((table, compute_table(spark, config, table), time.monotonic() - started))
        registry_checked.result()  # raises the registry's error before the first write
    results: list[BuildResult] = []
    for table, frame, compute_seconds in computed:
        started = time.monotonic()
        try:
            result = write_feature_table(spark, table, config.table_path(table.name), frame.df,
                                         rows=frame.rows, time_range=frame.time_range)
        except Exception:
            written = [t for t, _, _ in computed[:len(results)]]
            logger.error("table %s: the write failed; tables written before it: %s", table.name,
                         ", ".join(t.name for t in written) or "none")
            if written:
                register_tables(config, written)
            raise
        results.append(BuildResult(result, compute_seconds + time.monotonic() - started))
    register_tables(config, tables)
    return results


def sources_are_small(config: Config, tables: list[FeatureTable], limit: int = SMALL_INPUT_BYTES) -> bool:
    """True when every source of ``tables`` is a local file or folder and together they hold <= ``limit`` bytes.

    A remote source (a URI) or a missing path counts as large: its size is not known here.
    """
    return local_paths_are_small((source_location(config, s) for t in tables for s in t.sources), limit)
