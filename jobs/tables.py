"""The feature-table catalog on the command line: list, describe, history, restore, drop, cluster, optimize, vacuum.

    featurelake tables list [--json] [--json-out FILE]
    featurelake tables describe NAME [--json] [--json-out FILE]
    featurelake tables history NAME [--limit N] [--json] [--json-out FILE]
    featurelake tables restore NAME --version V
    featurelake tables drop NAME        # exit 4 while a Staging/Production model reads it
    featurelake tables cluster NAME     # clustered by its timestamp key from now on
    featurelake tables optimize NAME [--json] [--json-out FILE]
    featurelake tables vacuum NAME --retain-hours H [--dry-run] [--json] [--json-out FILE]
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from featurestore.catalog import describe_table, format_table_info, list_tables
from featurestore.core.config import Config
from jobs.common import add_json_options, emit_json, exit_process, job_parser, metadata_reader, run_job, start_spark

if TYPE_CHECKING:  # the maintenance module imports pyspark: not for the catalog commands
    from featurestore.maintenance import OptimizeResult, VacuumResult


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
    cluster = sub.add_parser("cluster", help="switch a feature table to liquid clustering by its timestamp key "
                                             "(then run optimize to cluster the existing files)")
    cluster.add_argument("name", help="feature table name")
    optimize = sub.add_parser("optimize", help="compact a feature table's small files and lay them out by its "
                                               "timestamp key (Delta OPTIMIZE; one commit)")
    optimize.add_argument("name", help="feature table name")
    add_json_options(optimize, "what was done")
    vacuum = sub.add_parser("vacuum", help="delete files no version younger than --retain-hours reads, keeping "
                                           "those a Staging or Production model's training set needs (Delta VACUUM)")
    vacuum.add_argument("name", help="feature table name")
    vacuum.add_argument("--retain-hours", type=float, required=True,
                        help="keep the files that versions of the last H hours read (at least the table's "
                             "delta.deletedFileRetentionDuration, 168 by default)")
    vacuum.add_argument("--dry-run", action="store_true", help="list what would be deleted; delete nothing")
    add_json_options(vacuum, "what was (or would be) deleted and kept")
    return parser


def _size(count: int, size: int) -> str:
    return f"{count} files, {size / 1e6:.2f} MB"


def _print_optimize(result: OptimizeResult) -> None:
    print(f"{result.table}: {result.layout}: {_size(result.before.files, result.before.bytes)} -> "
          f"{_size(result.after.files, result.after.bytes)} ({result.files_removed} files rewritten into "
          f"{result.files_added}; Delta version {result.delta_version})")


def _print_vacuum(result: VacuumResult) -> None:
    verb = "would delete" if result.dry_run else "deleted"
    print(f"{result.table}: {verb} {len(result.deleted_files)} files ({result.deleted_bytes / 1e6:.2f} MB) "
          f"no version of the last {result.retain_hours:g} hours reads; current version: "
          f"{_size(result.current.files, result.current.bytes)}")
    for name in result.deleted_files if result.dry_run else []:
        print(f"  {name}")
    for note in result.notes:
        print(f"  {note}")


def _run(args: argparse.Namespace, config: Config) -> None:
    reader = metadata_reader(config)  # delta-rs: no JVM unless a table needs Spark
    if args.action == "list":
        infos = list_tables(reader, config)
        emit_json(args, [i.to_dict() for i in infos])
        if args.json:
            return
        if not infos:
            print(f"no feature tables in {config.warehouse}")
        for info in infos:
            print(f"{info.name:<32} v{info.delta_version:<4} keys={','.join(info.primary_keys):<20} "
                  f"updated={info.last_updated}  {info.description or ''}")
    elif args.action == "describe":
        info = describe_table(reader, config, args.name)
        emit_json(args, info.to_dict())
        if not args.json:
            print(format_table_info(info))
    elif args.action == "history":
        commits = reader.history(describe_table(reader, config, args.name).path, args.limit)
        emit_json(args, [c.to_dict() for c in commits])
        for commit in [] if args.json else commits:
            rows = commit.metrics.get("numOutputRows") or commit.metrics.get("numTargetRowsInserted") or "-"
            print(f"v{commit.version:<5} {commit.timestamp}  {commit.operation:<24} rows={rows}")
    elif args.action == "restore":
        from featurestore.delta_tables import restore_table

        path = describe_table(reader, config, args.name).path
        new_version = restore_table(start_spark(config, [config.warehouse]), path, args.version)
        print(f"{args.name}: restored to version {args.version}, now at version {new_version}")
    elif args.action == "drop":
        from inference.registry import drop_feature_table

        drop_feature_table(start_spark(config, [config.warehouse]), config, args.name)
        print(f"{args.name}: dropped (Delta table and Feast registration)")
    elif args.action == "cluster":
        from inference.maintenance import cluster_feature_table

        changed = cluster_feature_table(start_spark(config, [config.warehouse]), config, args.name)
        print(f"{args.name}: " + ("clustered by its timestamp key from now on; run `featurelake tables optimize "
                                  f"{args.name}` to cluster the existing files" if changed
                                  else "already clustered by its timestamp key"))
    elif args.action == "optimize":
        from inference.maintenance import optimize_feature_table

        optimized = optimize_feature_table(start_spark(config, [config.warehouse]), config, args.name)
        emit_json(args, optimized.to_dict())
        if not args.json:
            _print_optimize(optimized)
    elif args.action == "vacuum":
        from inference.maintenance import vacuum_feature_table

        vacuumed = vacuum_feature_table(start_spark(config, [config.warehouse]), config, args.name, args.retain_hours,
                                        dry_run=args.dry_run)
        emit_json(args, vacuumed.to_dict())
        if not args.json:
            _print_vacuum(vacuumed)


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit code."""
    return run_job(_run, build_parser().parse_args(argv))


if __name__ == "__main__":
    exit_process(main())
