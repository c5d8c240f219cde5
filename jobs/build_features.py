"""Build feature tables: compute, validate, upsert into Delta, register in Feast.

Run it with the console script, as a module, or through spark-submit::

    featurelake build --config featurelake.yaml --tables customer_profile
    python -m jobs.build_features --config featurelake.yaml
    ./spark-submit.sh build_features --config featurelake.yaml
"""

from __future__ import annotations

import argparse
import logging

from pyspark.errors import PySparkException

from featurestore.build import build_tables, load_project_tables, sources_are_small
from featurestore.core.config import Config
from featurestore.definitions import FeatureTable, select_tables
from featurestore.delta_tables import WriteResult
from featurestore.runtime.spark_session import get_spark, input_size_matters
from jobs.common import exit_process, job_parser, log_summary, run_job

logger = logging.getLogger("featurelake.build")


def build_parser() -> argparse.ArgumentParser:
    """Return the job's argument parser."""
    parser = job_parser("featurelake build", "Build feature tables into Delta Lake and register them in Feast.")
    parser.add_argument("--tables", nargs="+", metavar="NAME",
                        help="tables to build (default: every table in the definitions)")
    return parser


def _tables_before_spark(config: Config, names: list[str] | None) -> list[FeatureTable] | None:
    """Load the definitions before the session starts (to size the sources), or None if they need Spark.

    Definitions may need a session while they load (``@F.udf("double")`` parses its type in
    the JVM); those are loaded once the session runs, which then starts without quick start.
    """
    try:
        return select_tables(load_project_tables(config), names)
    except PySparkException as exc:
        logger.debug("definitions need a Spark session to load: %s", exc)
        return None


def _run(args: argparse.Namespace, config: Config) -> None:
    tables = _tables_before_spark(config, args.tables) if input_size_matters(config.spark) else None
    spark = get_spark(config, small_input=tables is not None and sources_are_small(config, tables))
    if tables is None:
        tables = select_tables(load_project_tables(config), args.tables)
    writes = [result.write for result in build_tables(spark, config, tables)]

    def action(w: WriteResult) -> str:
        return "created" if w.created else "unchanged" if w.version_after == w.version_before else "merged"

    log_summary(f"built {len(writes)} table(s): " + "; ".join(
        f"{w.table}: {action(w)}, {w.rows_inserted} inserted, {w.rows_updated} updated, Delta version {w.version_after}"
        for w in writes))


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit code."""
    return run_job(_run, build_parser().parse_args(argv))


if __name__ == "__main__":
    exit_process(main())
