"""The feature-table catalog on the command line: list, describe, history, restore, drop.

    featurelake tables list [--json] [--json-out FILE]
    featurelake tables describe NAME [--json] [--json-out FILE]
    featurelake tables history NAME [--limit N] [--json] [--json-out FILE]
    featurelake tables restore NAME --version V
    featurelake tables drop NAME        # exit 4 while a Staging/Production model reads it
"""

from __future__ import annotations

import argparse

from featurestore.catalog import describe_table, format_table_info, list_tables
from featurestore.core.config import Config
from featurestore.delta_tables import restore_table, table_history
from jobs.common import add_json_options, emit_json, exit_process, job_parser, run_job, start_spark


def build_parser() -> argparse.ArgumentParser:
    """Return the command's argument parser."""
    parser = job_parser("featurelake tables", "Show the feature tables of the warehouse.")
    sub = parser.add_subparsers(dest="action", required=True)
    listing = sub.add_parser("list", help="list feature tables")
    add_json_options(listing, "the tables")
    describe = sub.add_parser("describe", help="show one feature table")
    describe.add_argument("name", help="feature table name")
    add_json_options(describe, "the table")
    history = sub.add_parser("history", help="show the Delta history (time travel) of a feature table")
    history.add_argument("name", help="feature table name")
    history.add_argument("--limit", type=int, default=20, help="newest N versions (default 20)")
    add_json_options(history, "the history")
    restore = sub.add_parser("restore", help="restore a feature table to an earlier Delta version")
    restore.add_argument("name", help="feature table name")
    restore.add_argument("--version", type=int, required=True, help="Delta version to restore")
    drop = sub.add_parser("drop", help="drop a feature table: its Delta table and its Feast registration "
                                       "(refused, exit 4, while a Staging or Production model reads it)")
    drop.add_argument("name", help="feature table name")
    return parser


def _run(args: argparse.Namespace, config: Config) -> None:
    spark = start_spark(config, [config.warehouse])
    if args.action == "list":
        infos = list_tables(spark, config)
        emit_json(args, [i.to_dict() for i in infos])
        if args.json:
            return
        if not infos:
            print(f"no feature tables in {config.warehouse}")
        for info in infos:
            print(f"{info.name:<32} v{info.delta_version:<4} keys={','.join(info.primary_keys):<20} "
                  f"updated={info.last_updated}  {info.description or ''}")
    elif args.action == "describe":
        info = describe_table(spark, config, args.name)
        emit_json(args, info.to_dict())
        if not args.json:
            print(format_table_info(info))
    elif args.action == "history":
        path = describe_table(spark, config, args.name).path
        entries = table_history(spark, path, args.limit)
        emit_json(args, entries)
        for entry in [] if args.json else entries:
            metrics = entry["operationMetrics"] or {}
            rows = metrics.get("numOutputRows") or metrics.get("numTargetRowsInserted") or "-"
            print(f"v{entry['version']:<5} {entry['timestamp']}  {entry['operation']:<24} rows={rows}")
    elif args.action == "restore":
        path = describe_table(spark, config, args.name).path
        new_version = restore_table(spark, path, args.version)
        print(f"{args.name}: restored to version {args.version}, now at version {new_version}")
    elif args.action == "drop":
        from inference.registry import drop_feature_table

        drop_feature_table(spark, config, args.name)
        print(f"{args.name}: dropped (Delta table and Feast registration)")


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit code."""
    return run_job(_run, build_parser().parse_args(argv))


if __name__ == "__main__":
    exit_process(main())
