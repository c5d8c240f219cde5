"""Profile: the same point-in-time query over pandas-written parquet files and over featurelake's Delta tables.

Issue 29 measured a one-window query 1.45x slower over the Delta tables than over the parquet
files pandas wrote with the same rows. This profile runs the builder's own point-in-time query
(labels and the three tables in one union, one window) over four readings of the same rows,
each in its own fresh process (a fresh JVM, as a user's job), the readings interleaved round
by round:

- ``parquet``: the pandas files, ``spark.read.parquet``;
- ``delta_files``: the Delta tables' data files, ``spark.read.parquet`` (Delta's layout, no Delta);
- ``delta_reader``: Delta's Spark reader, as featurelake read tables before (``isDeltaTable``,
  ``format("delta")``, ``SHOW TBLPROPERTIES``);
- ``log_reader``: featurelake's reader (:func:`featurestore.table_reader.read_table_version`:
  the file list from the Delta log with delta-rs, the files read as parquet).

Per process it records the time to resolve the three tables (and the Spark jobs that took), the
first and a second run of the query into the ``noop`` sink with the JVM CPU each took, and the
scan metrics of the first run (files, bytes, scan time, rows per scan node); the orchestrator
adds the file and row-group layout of both sets of files (pyarrow metadata).

    python -m benchmarks.delta_vs_parquet --scale 10 --repeat 2   # 1M labels, 3 x 500k rows
"""

from __future__ import annotations

import argparse
import glob
import json
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import base_parser, compute_all, load_average, main_for, result_header
from benchmarks.pit_shapes import FEATURE_TIME, KEY, LABEL_TIME, Shape, tables
from benchmarks.training_set import Workdir, jvm_cpu_seconds, prepare, read_labels, spawn

logger = logging.getLogger(__name__)

NAME = "delta_vs_parquet"
NAME_MODULE = "benchmarks.delta_vs_parquet"
READINGS = ("parquet", "delta_files", "delta_reader", "log_reader")
SCAN_METRICS = ("number of files read", "size of files read", "scan time", "number of output rows",
                "metadata time", "number of partitions read")


def shape_of(args: argparse.Namespace) -> Shape:
    """Issue 29's shape at ``--scale``: a 400-day ttl on every table, 1% ties, 4 features, ns labels."""
    return Shape(labels=int(100_000 * args.scale), entities=int(10_000 * args.scale), rows_per_entity=5,
                 features_per_table=4, ttl_days=400, tie_fraction=0.01, label_time_unit="ns")


def table_frames(spark: Any, workdir: Workdir, shape: Shape, reading: str) -> list[Any]:
    """Each table's rows, read the way ``reading`` says."""
    from featurestore.table_reader import _version_through_spark, read_table_version

    frames = []
    for table in tables(shape):
        path = workdir.config().table_path(table.name)
        if reading == "parquet":
            frames.append(spark.read.parquet(str(workdir.sources / f"{table.name}.parquet")))
        elif reading == "delta_files":
            frames.append(spark.read.parquet(*sorted(glob.glob(f"{path}/*.parquet"))))
        elif reading == "delta_reader":
            frames.append(_version_through_spark(spark, table.name, path, None).data)
        else:
            frames.append(read_table_version(spark, table.name, path).data)
        frames[-1].schema  # noqa: B018 - resolve now (Delta loads its snapshot here)
    return frames


def query(labels: Any, frames: list[Any], shape: Shape) -> Any:
    """The builder's point-in-time query (one union, one window) over ``frames``, features selected as it does."""
    from pyspark.sql import functions as F

    from featurestore.training_set import _point_in_time, _Resolved

    group = []
    for index, (table, data) in enumerate(zip(tables(shape), frames)):
        features = [f.name for f in table.features]
        resolved = _Resolved(table.name, "", features, [KEY], [KEY], FEATURE_TIME, LABEL_TIME,
                             int(table.ttl.total_seconds()) if table.ttl else None, 0)
        group.append((index, resolved, data.select(KEY, FEATURE_TIME, *features)))
    carried, found = _point_in_time(labels, group, 0)
    return carried.select(*labels.columns, *[F.when(found[index], F.col(f"__fl_r{index}").getField(f"f{i}")).alias(f)
                                             for index, resolved, _ in group for i, f in enumerate(resolved.features)])


def scan_metrics(spark: Any) -> list[dict[str, Any]]:
    """The parquet scans' metrics of the session's last SQL execution that scanned parquet (Spark's
    SQL status store; Delta's own log-replay executions come after the query's and are skipped)."""
    store = spark._jsparkSession.sharedState().statusStore()
    executions = store.executionsList()
    for position in range(executions.size() - 1, -1, -1):
        last = executions.apply(position)
        nodes = store.planGraph(last.executionId()).allNodes()
        if any(str(nodes.apply(i).name()).startswith("Scan parquet") for i in range(nodes.size())):
            break
    values = store.executionMetrics(last.executionId())
    scans = []
    for i in range(nodes.size()):
        node = nodes.apply(i)
        if not str(node.name()).startswith("Scan"):
            continue
        row: dict[str, Any] = {"node": str(node.name())}
        metrics = node.metrics()
        for j in range(metrics.size()):
            metric = metrics.apply(j)
            if str(metric.name()) in SCAN_METRICS:
                value = values.get(metric.accumulatorId())
                row[str(metric.name())] = str(value.get()).replace("\n", " ") if value.isDefined() else ""
        scans.append(row)
    return scans


def job_count(spark: Any, group: str) -> int:
    """Spark jobs run under the job group ``group``."""
    return len(spark.sparkContext.statusTracker().getJobIdsForGroup(group))


def reading_side(workdir: Workdir, shape: Shape, reading: str) -> dict[str, Any]:
    """In this fresh process: resolve the tables as ``reading`` says, run the query twice into ``noop``."""
    from featurestore.runtime.spark_session import get_spark

    started = time.perf_counter()
    spark = get_spark(workdir.config())
    labels = read_labels(spark, workdir)
    figures: dict[str, Any] = {"session_seconds": round(time.perf_counter() - started, 2), "load_before": load_average()}
    spark.sparkContext.setJobGroup("resolve", "resolve")
    cpu, started = jvm_cpu_seconds(), time.perf_counter()
    frames = table_frames(spark, workdir, shape, reading)
    figures.update(resolve_seconds=round(time.perf_counter() - started, 3), resolve_jvm_cpu=round(jvm_cpu_seconds() - cpu, 2),
                   resolve_jobs=job_count(spark, "resolve"))
    for run in ("first", "second"):
        spark.sparkContext.setJobGroup(run, run)
        cpu, started = jvm_cpu_seconds(), time.perf_counter()
        compute_all(query(labels, frames, shape))
        figures[f"{run}_query_seconds"] = round(time.perf_counter() - started, 3)
        figures[f"{run}_query_jvm_cpu"] = round(jvm_cpu_seconds() - cpu, 2)
        figures[f"{run}_query_jobs"] = job_count(spark, run)
        if run == "first":
            figures["scans"] = scan_metrics(spark)
    figures["resolve_plus_first_seconds"] = round(figures["resolve_seconds"] + figures["first_query_seconds"], 3)
    return figures


def layout(workdir: Workdir, shape: Shape) -> list[dict[str, Any]]:
    """Files, rows, row groups, bytes, timestamp encoding and statistics of both sets of files."""
    import pyarrow.parquet as pq

    rows = []
    for table in tables(shape):
        sets = {"pandas parquet": [str(workdir.sources / f"{table.name}.parquet")],
                "featurelake Delta": sorted(glob.glob(f"{workdir.config().table_path(table.name)}/*.parquet"))}
        for label, files in sets.items():
            metas = [pq.ParquetFile(f).metadata for f in files]
            groups = [m.row_group(i) for m in metas for i in range(m.num_row_groups)]
            ts = [g.column(metas[0].schema.names.index(FEATURE_TIME)) for g in groups]
            rows.append({"table": table.name, "files": label, "file count": len(files),
                         "empty files": sum(1 for m in metas if m.num_rows == 0),
                         "rows": sum(m.num_rows for m in metas), "row groups": len(groups),
                         "MiB": round(sum(Path(f).stat().st_size for f in files) / 2**20, 2),
                         "ts type": ts[0].physical_type if ts else "",
                         "ts min/max in footer": bool(ts and ts[0].statistics is not None and ts[0].statistics.has_min_max),
                         "writer": metas[-1].created_by.split(" (")[0] if metas else ""})
    return rows


def run_worker(args: argparse.Namespace) -> None:
    """The ``--worker`` entry point: prepare, or profile one reading; figures as JSON to ``--figures``."""
    workdir, shape = Workdir(Path(args.workdir)), shape_of(args)
    figures = prepare(workdir, shape) if args.worker == "prepare" else reading_side(workdir, shape, args.worker)
    Path(args.figures).write_text(json.dumps(figures, default=str))


def worker_arguments(args: argparse.Namespace) -> list[str]:
    """What a worker process needs to know: the scale."""
    return ["--scale", f"{args.scale:g}"]


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Prepare the data, profile each reading in fresh processes round by round; return the results."""
    shape = shape_of(args)
    workdir = Workdir(Path(args.workdir or tempfile.mkdtemp(prefix="bench_dvp_")))
    result = result_header(NAME, args, {**shape.to_dict(), "readings": list(args.readings)})
    spawn(args, workdir, "prepare", "prepare", NAME_MODULE, worker_arguments(args))
    runs: dict[str, list[dict[str, Any]]] = {r: [] for r in args.readings}
    for number in range(args.repeat):
        shift = number % len(args.readings)
        for reading in list(args.readings[shift:]) + list(args.readings[:shift]):
            runs[reading].append(spawn(args, workdir, reading, f"{reading}-{number}", NAME_MODULE, worker_arguments(args)))
    result.update(assemble(args, runs, layout(workdir, shape)))
    return result


FIGURES = ("resolve_seconds", "resolve_jvm_cpu", "resolve_jobs", "first_query_seconds", "first_query_jvm_cpu",
           "first_query_jobs", "resolve_plus_first_seconds", "second_query_seconds", "second_query_jvm_cpu")


def assemble(args: argparse.Namespace, runs: dict[str, list[dict[str, Any]]],
             files: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians per reading, every run, the scan metrics of the first round, the layout."""
    medians = [{"reading": reading, **{f: round(statistics.median(r[f] for r in rs), 3) for f in FIGURES},
                "loads before": [r["load_before"][0] for r in rs]} for reading, rs in runs.items()]
    every = [{"reading": reading, "round": n + 1, "load": r["load_before"][0], **{f: r[f] for f in FIGURES}}
             for reading, rs in runs.items() for n, r in enumerate(rs)]
    scans = [{"reading": reading, **scan} for reading, rs in runs.items() for scan in rs[0]["scans"]]
    base = {m["reading"]: m for m in medians}
    summary = [f"{m['reading']}: resolve {m['resolve_seconds']} s ({m['resolve_jobs']} Spark jobs), first query "
               f"{m['first_query_seconds']} s, together {m['resolve_plus_first_seconds']} s; second query "
               f"{m['second_query_seconds']} s" for m in medians]
    if "parquet" in base:
        summary += [f"{r} / parquet (resolve + first query): "
                    f"{base[r]['resolve_plus_first_seconds'] / base['parquet']['resolve_plus_first_seconds']:.2f}x"
                    for r in base if r != "parquet"]
    return {"summary": summary,
            "tables": {"Medians per reading (fresh process each; seconds, JVM CPU seconds, Spark jobs)": medians,
                       "Every run": every, "Scan metrics of the first query (first round)": scans,
                       "File layout": files}}


def build_parser() -> argparse.ArgumentParser:
    """Return the profile's argument parser."""
    parser = base_parser("benchmarks.delta_vs_parquet", __doc__.splitlines()[0])
    parser.add_argument("--readings", nargs="+", choices=READINGS, default=list(READINGS), help="what to profile")
    parser.add_argument("--in-process", action="store_true", help="every reading in this process (a quick check)")
    parser.add_argument("--worker", choices=("prepare", *READINGS), help=argparse.SUPPRESS)
    parser.add_argument("--figures", help=argparse.SUPPRESS)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    return main_for(NAME, build_parser(), run, argv, worker=run_worker)


if __name__ == "__main__":
    sys.exit(main())
