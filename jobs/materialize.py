"""Load the newest feature values from the Delta tables into Feast's online store.

The first run of a table loads everything up to ``--end-date``; later runs are incremental
(Feast's ``materialize_incremental``); ``--full`` loads everything again. Materialization runs on Spark through Feast's Spark
compute engine, so the tables are never collected to the driver::

    featurelake materialize --config featurelake.yaml
    featurelake materialize --tables customer_profile --end-date 2026-03-01T00:00:00
    featurelake materialize --tables customer_profile --full
    python -m jobs.materialize --config featurelake.yaml
"""

from __future__ import annotations

import argparse

from featurestore.core.config import Config
from featurestore.online import materialize, parse_timestamp
from jobs.common import add_json_options, emit_json, exit_process, job_parser, log_summary, run_job, start_spark


def build_parser() -> argparse.ArgumentParser:
    """Return the job's argument parser."""
    parser = job_parser("featurelake materialize",
                        "Materialize the newest feature values into Feast's online store (incremental).")
    parser.add_argument("--tables", nargs="+", metavar="NAME",
                        help="feature tables to materialize (default: every registered table)")
    parser.add_argument("--end-date", metavar="TIMESTAMP",
                        help="load values with event time up to this ISO 8601 time, UTC if no zone (default: now)")
    parser.add_argument("--full", action="store_true",
                        help="load every row up to --end-date again, not only rows after the previous run "
                             "(after adding a feature column or correcting earlier values)")
    add_json_options(parser, "the results")
    return parser


def _run(args: argparse.Namespace, config: Config) -> None:
    end = parse_timestamp(args.end_date) if args.end_date else None
    spark = start_spark(config, [config.warehouse])
    results = materialize(spark, config, args.tables, end, full=args.full)
    emit_json(args, [r.to_dict() for r in results])
    for r in [] if args.json else results:
        print(f"{r.table}: {'incremental' if r.incremental else 'full'} {r.start.isoformat()} -> "
              f"{r.end.isoformat()}, {r.rows_in_window} rows / {r.keys_in_window} keys in window")
    log_summary(f"materialized {len(results)} table(s): {sum(r.keys_in_window for r in results)} keys")


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit code."""
    return run_job(_run, build_parser().parse_args(argv))


if __name__ == "__main__":
    exit_process(main())
