"""Read feature values from Feast's online store, as JSON.

Each ``--key`` is one entity row of COLUMN=VALUE pairs (several pairs for composite keys)::

    featurelake online-features --table customer_profile --key customer_id=7
    featurelake online-features --table customer_weekly_spend --key customer_id=7 --key customer_id=8 \\
        --features spend_7d txn_count_7d
"""

from __future__ import annotations

import argparse
import json

from featurestore.core.config import Config
from featurestore.online import get_online_features, parse_key_values
from jobs.common import exit_process, job_parser, run_job


def build_parser() -> argparse.ArgumentParser:
    """Return the command's argument parser."""
    parser = job_parser("featurelake online-features", "Print online feature values of a feature table as JSON.")
    parser.add_argument("--table", required=True, help="feature table (Feast feature view) name")
    parser.add_argument("--key", required=True, action="append", nargs="+", metavar="COLUMN=VALUE",
                        help="one entity row; repeat --key for several rows")
    parser.add_argument("--features", nargs="+", metavar="NAME", help="features to return (default: all)")
    return parser


def _run(args: argparse.Namespace, config: Config) -> None:
    rows = [parse_key_values(pairs) for pairs in args.key]
    values = get_online_features(config, args.table, rows, args.features)
    print(json.dumps({"table": args.table, "rows": values}, indent=2, default=str))


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit code."""
    return run_job(_run, build_parser().parse_args(argv))


if __name__ == "__main__":
    exit_process(main())
