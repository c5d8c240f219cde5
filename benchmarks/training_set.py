"""Benchmark: point-in-time training set, featurelake vs Feast's get_historical_features and pandas merge_asof.

The data (:mod:`benchmarks.pit_shapes`) is written by pandas: every feature table's rows and
the labels as parquet files; the Delta feature tables are created from those files by
featurelake and registered in Feast. Each side then runs in its own fresh process, the sides
interleaved round by round (so each sees the same load and pays the same cold JVM):

- featurelake: ``create_training_set`` over the Delta tables;
- Feast 0.67: ``get_historical_features`` with the Spark offline store over the same tables;
- pandas: ``merge_asof`` per table on the parquet files, the whole process timed (interpreter
  start, imports, reads, joins, the parquet write).

featurelake and Feast are timed from the call until the result is written to the sink
(``noop``: computed in full, nothing kept; ``parquet`` or ``delta``: written as such); the
session start is not timed. The two results are then compared row for row (``exceptAll``
both ways, on the written files when there are some), and pandas' with ours where it wrote one.
Every figure carries the load average (1/5/15 min) at its start.

    python -m benchmarks.training_set               # the original shape: 100k labels, 7 mixed features
    python -m benchmarks.training_set --scale 10    # 1M labels, 100k entities, 3 x 500k feature rows
    python -m benchmarks.training_set --scale 10 --ttl-days 400 --tie-fraction 0.01 \\
        --features-per-table 4 --label-time-unit ns --sink parquet      # issue 29's shape
    python -m benchmarks.training_set --scale 100 --sides ours ...      # 10M labels, featurelake alone
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

from benchmarks.common import (MemorySampler, base_parser, compute_all, load_average, main_for, ratio,
                               result_header, target_row)
from benchmarks.pit_shapes import KEY, LABEL, LABEL_TIME, Shape, create_tables, tables, write_sources

logger = logging.getLogger(__name__)

NAME = "training_set"
BASE_LABELS = 100_000
BASE_ENTITIES = 10_000
SIDES = ("ours", "feast", "pandas")
SINKS = ("noop", "parquet", "delta")
SPARK_SIDES = ("ours", "feast")
WORKER_TIMEOUT_SECONDS = 3 * 3600


def shape_of(args: argparse.Namespace) -> Shape:
    """The data shape the arguments ask for (scaled)."""
    return Shape(labels=int(args.labels * args.scale), entities=int(args.entities * args.scale),
                 rows_per_entity=args.rows_per_entity, features_per_table=args.features_per_table,
                 ttl_days=args.ttl_days, tie_fraction=args.tie_fraction, label_time_unit=args.label_time_unit)


def results_name(args: argparse.Namespace) -> str:
    """``training_set``, then ``_x<scale>`` and the shape's tag and sink where they are not the defaults."""
    parts = [NAME]
    if args.scale != 1:
        parts.append(f"x{args.scale:g}")
    if shape_of(args).tag():
        parts.append(shape_of(args).tag())
    if args.sink != "noop":
        parts.append(args.sink)
    if tuple(args.sides) != SIDES:
        parts.append("_".join(args.sides))
    return "_".join(parts)


def feature_columns(shape: Shape) -> list[str]:
    """Every feature of every table, in table order."""
    return [f.name for t in tables(shape) for f in t.features]


def columns(shape: Shape) -> list[str]:
    """The result columns compared (labels, then every feature)."""
    return [KEY, LABEL_TIME, LABEL] + feature_columns(shape)


# ----- the workers: each runs in its own process -----------------------------------------------

class Workdir:
    """The benchmark's folder: data, warehouse, Feast repository, outputs, worker figures."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.sources = root / "sources"
        self.outputs = root / "outputs"
        self.figures = root / "figures"
        self.shape_file = root / "shape.json"

    def config(self) -> Any:
        from featurestore.core.config import Config, resolve_paths

        config = resolve_paths(Config(warehouse="warehouse"), self.root)
        config.spark.master = "local[2]"
        return config

    def output(self, side: str, sink: str) -> str:
        return str(self.outputs / (f"{side}.parquet" if sink != "delta" else f"{side}_delta"))


def prepare(workdir: Workdir, shape: Shape) -> dict[str, Any]:
    """Write the pandas files, create the Delta tables and register them in Feast (skipped when
    ``workdir`` already holds this shape's data)."""
    if workdir.shape_file.exists() and json.loads(workdir.shape_file.read_text()) == shape.to_dict():
        return {"reused": True}
    from featurestore.feast_repo import register_tables
    from featurestore.runtime.spark_session import get_spark

    started = time.perf_counter()
    sources = write_sources(shape, workdir.sources)
    written = time.perf_counter() - started
    config = workdir.config()
    spark = get_spark(config)
    create_tables(spark, config, shape, sources)
    register_tables(config, tables(shape))
    workdir.shape_file.write_text(json.dumps(shape.to_dict()))
    return {"reused": False, "pandas_write_seconds": round(written, 2),
            "prepare_seconds": round(time.perf_counter() - started, 2)}


def read_labels(spark: Any, workdir: Workdir) -> Any:
    """The labels as a Spark DataFrame (nanosecond timestamps read as timestamps)."""
    from featurestore.data_files import read_data_files

    return read_data_files(spark, str(workdir.sources / "labels.parquet"), "labels")


def ours(spark: Any, config: Any, labels: Any, shape: Shape) -> Any:
    """featurelake's training set: every feature of every table, point in time on the label time."""
    from featurestore.training_set import FeatureLookup, create_training_set

    lookups = [FeatureLookup(t.name, timestamp_lookup_key=LABEL_TIME) for t in tables(shape)]
    return create_training_set(spark, config, labels, lookups, label=LABEL).df


def feast(spark: Any, store: Any, labels: Any, shape: Shape) -> Any:
    """Feast's historical features for the same labels and features."""
    job = store.get_historical_features(entity_df=labels,
                                        features=[f"{t.name}:{f.name}" for t in tables(shape) for f in t.features])
    df = job.to_spark_df()
    # Feast switches this on for the whole session; switch it back so our SQL is unaffected.
    spark.conf.set("spark.sql.parser.quotedRegexColumnNames", "false")
    return df


def write_result(df: Any, sink: str, location: str) -> None:
    """Compute ``df`` into the sink: ``noop`` (computed, nothing kept), ``parquet`` or ``delta`` files."""
    if sink == "noop":
        compute_all(df)
    elif sink == "parquet":
        df.write.mode("overwrite").parquet(location)
    else:
        df.write.format("delta").mode("overwrite").save(location)


def spark_side(workdir: Workdir, shape: Shape, side: str, sink: str, calls: int) -> dict[str, Any]:
    """Time ``side`` (ours or feast) from the call until its result is in the sink, ``calls`` times in this process."""
    from featurestore.runtime.spark_session import get_spark

    config = workdir.config()
    started = time.perf_counter()
    spark = get_spark(config)
    labels = read_labels(spark, workdir)
    store = None
    if side == "feast":
        from featurestore.feast_repo import feature_store

        store = feature_store(config)
    figures: dict[str, Any] = {"session_seconds": round(time.perf_counter() - started, 2), "calls": []}
    with MemorySampler() as sampler:
        for call in range(calls):
            group = f"{side}{call}"
            spark.sparkContext.setJobGroup(group, f"{side} call {call}")
            load, cpu, started = load_average(), jvm_cpu_seconds(), time.perf_counter()
            df = ours(spark, config, labels, shape) if side == "ours" else feast(spark, store, labels, shape)
            planned = time.perf_counter() - started
            write_result(df, sink, workdir.output(side, sink))
            seconds = time.perf_counter() - started
            figures["calls"].append({"seconds": round(seconds, 3), "planning_seconds": round(planned, 3),
                                     "jvm_cpu_seconds": round(jvm_cpu_seconds() - cpu, 2), "load_before": load,
                                     **job_counts(spark, group)})
        figures.update(sampler.snapshot())
    figures["plan"] = executed_plan_summary(df)
    return figures


def pandas_side(workdir: Workdir, shape: Shape) -> dict[str, Any]:
    """pandas' merge_asof per table on the parquet files, written as parquet (what the process does)."""
    import pandas as pd

    started = time.perf_counter()
    result = pd.read_parquet(workdir.sources / "labels.parquet").sort_values(LABEL_TIME, kind="stable")
    unit = result[LABEL_TIME].dtype
    for table in tables(shape):
        rows = pd.read_parquet(workdir.sources / f"{table.name}.parquet")
        rows = rows.rename(columns={table.timestamp_key: "__ts"}).astype({"__ts": unit}).sort_values("__ts")
        result = pd.merge_asof(result, rows, left_on=LABEL_TIME, right_on="__ts", by=KEY, direction="backward",
                               allow_exact_matches=True,
                               tolerance=pd.Timedelta(table.ttl) if table.ttl is not None else None)
        result = result.drop(columns="__ts")
    result[LABEL_TIME] = result[LABEL_TIME].astype("datetime64[us, UTC]")
    result.to_parquet(workdir.output("pandas", "parquet"), index=False)
    return {"compute_seconds": round(time.perf_counter() - started, 3), "rows": len(result)}


def compare_side(workdir: Workdir, shape: Shape, sink: str, sides: list[str]) -> dict[str, Any]:
    """Compare the results row for row: ours with Feast's and with pandas' (as far as each ran)."""
    from pyspark.sql import functions as F

    from featurestore.runtime.spark_session import get_spark

    config = workdir.config()
    spark = get_spark(config)
    labels = read_labels(spark, workdir)

    def written(side: str) -> Any:
        location = workdir.output(side, sink)
        return spark.read.format("delta").load(location) if sink == "delta" else spark.read.parquet(location)

    ours_df = written("ours") if sink != "noop" else ours(spark, config, labels, shape)
    check: dict[str, Any] = {}
    if "feast" in sides:
        from featurestore.feast_repo import feature_store

        feast_df = written("feast") if sink != "noop" else feast(spark, feature_store(config), labels, shape)
        check.update(compare(ours_df, feast_df, shape, "feast"))
    if "pandas" in sides:
        numeric = {f.name for t in tables(shape) for f in t.features if f.dtype != "string"}
        doubles = [F.col(c).cast("double").alias(c) if c in numeric else F.col(c) for c in columns(shape)]
        check.update(compare(ours_df.select(*doubles), spark.read.parquet(workdir.output("pandas", "parquet"))
                             .select(*doubles), shape, "pandas"))
    last = feature_columns(shape)[-1]
    check["feature_nulls_ours"] = ours_df.filter(F.col(last).isNull()).count()
    return check


def compare(a: Any, b: Any, shape: Shape, other: str) -> dict[str, int]:
    """Row-for-row comparison (multiset) of our result ``a`` and ``other``'s ``b`` on every compared column."""
    a, b = a.select(*columns(shape)), b.select(*columns(shape))
    return {"rows_ours": a.count(), f"rows_{other}": b.count(),
            f"only_in_ours_vs_{other}": a.exceptAll(b).count(), f"only_in_{other}": b.exceptAll(a).count()}


def executed_plan_summary(df: Any) -> dict[str, int]:
    """Count the expensive operators of the physical plan (a cheap, static profile)."""
    plan = df._jdf.queryExecution().executedPlan().toString()
    return {op: plan.count(op) for op in ("Exchange", "SortMergeJoin", "BroadcastHashJoin",
                                          "BroadcastNestedLoopJoin", "Window", "Sort ", "HashAggregate",
                                          "Scan parquet")}


def job_counts(spark: Any, group: str) -> dict[str, int]:
    """Jobs, stages and tasks that the job group ``group`` ran (status tracker)."""
    tracker = spark.sparkContext.statusTracker()
    jobs = [tracker.getJobInfo(j) for j in tracker.getJobIdsForGroup(group)]
    stages = [tracker.getStageInfo(s) for job in jobs if job is not None for s in job.stageIds]
    stages = [s for s in stages if s is not None]
    return {"jobs": len(jobs), "stages": len(stages), "tasks": sum(s.numTasks for s in stages)}


def jvm_cpu_seconds() -> float:
    """User + system CPU seconds of the driver JVM (in local mode it runs the executors too).

    Less sensitive than wall time to other processes on the machine: a starved CPU makes
    the wall time grow, not the CPU time spent on the work.
    """
    total = 0.0
    for child in psutil.Process().children(recursive=True):
        try:
            if "java" in child.name():
                times = child.cpu_times()
                total += times.user + times.system
        except psutil.Error:
            continue
    return total


def run_worker(args: argparse.Namespace) -> None:
    """The ``--worker`` entry point: do one side's part and write its figures as JSON to ``--figures``."""
    workdir, shape = Workdir(Path(args.workdir)), shape_of(args)
    if args.worker == "prepare":
        figures = prepare(workdir, shape)
    elif args.worker == "pandas":
        figures = pandas_side(workdir, shape)
    elif args.worker == "compare":
        figures = compare_side(workdir, shape, args.sink, args.sides)
    else:
        figures = spark_side(workdir, shape, args.worker, args.sink, args.calls)
    Path(args.figures).write_text(json.dumps(figures, default=str))


# ----- the orchestrator: no Spark here ---------------------------------------------------------

def spawn(args: argparse.Namespace, workdir: Workdir, worker: str, tag: str, module: str = "benchmarks.training_set",
          arguments: list[str] | None = None) -> dict[str, Any]:
    """Run one worker of ``module`` in a fresh process (``arguments``: this benchmark's
    :func:`worker_arguments` by default); return its figures plus the process' wall time and load.

    With ``--in-process`` the worker runs in this process instead, on the active Spark session
    (the smoke test's: no JVM start per worker; the figures then say nothing about a fresh process).
    """
    workdir.figures.mkdir(parents=True, exist_ok=True)
    figures_path = workdir.figures / f"{tag}.json"
    worker_args = [*(worker_arguments(args) if arguments is None else arguments),
                   "--workdir", str(workdir.root), "--worker", worker, "--figures", str(figures_path)]
    load, started = load_average(), time.perf_counter()
    if args.in_process:
        benchmark = importlib.import_module(module)
        benchmark.run_worker(benchmark.build_parser().parse_args(worker_args))
    else:
        done = subprocess.run([sys.executable, "-m", module, *worker_args], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, timeout=WORKER_TIMEOUT_SECONDS,
                              env={**os.environ, "PYTHONPATH": _python_path()})
        if done.returncode != 0:
            raise RuntimeError(f"worker {worker} failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    seconds = time.perf_counter() - started
    figures = json.loads(figures_path.read_text())
    logger.info("%s: process %.1f s, load %s", tag, seconds, load)
    return {**figures, "process_seconds": round(seconds, 2), "process_load_before": load}


def _python_path() -> str:
    root = str(Path(__file__).resolve().parent.parent)
    return os.pathsep.join([root, os.environ["PYTHONPATH"]]) if os.environ.get("PYTHONPATH") else root


def worker_arguments(args: argparse.Namespace) -> list[str]:
    """The arguments that define the shape, sink and sides, for a worker process."""
    out = ["--scale", f"{args.scale:g}", "--labels", str(args.labels), "--entities", str(args.entities),
           "--rows-per-entity", str(args.rows_per_entity), "--tie-fraction", f"{args.tie_fraction:g}",
           "--label-time-unit", args.label_time_unit, "--sink", args.sink, "--calls", str(args.calls),
           "--sides", *args.sides]
    if args.features_per_table is not None:
        out += ["--features-per-table", str(args.features_per_table)]
    if args.ttl_days is not None:
        out += ["--ttl-days", str(args.ttl_days)]
    return out


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Prepare the data, time each side in fresh processes, round by round, check equality; return the results."""
    shape = shape_of(args)
    workdir = Workdir(Path(args.workdir or tempfile.mkdtemp(prefix="bench_ts_")))
    result = result_header(NAME, args, {**shape.to_dict(), "feature_tables": 3,
                                        "feature_rows_per_table": shape.entities * shape.rows_per_entity,
                                        "features": len(feature_columns(shape)),
                                        "ttl": {t.name: t.ttl.days if t.ttl else None for t in tables(shape)},
                                        "sink": args.sink, "sides": args.sides, "calls_per_process": args.calls})
    result["results_name"] = results_name(args)
    try:
        prepared = spawn(args, workdir, "prepare", "prepare")
        rounds: dict[str, list[dict[str, Any]]] = {side: [] for side in args.sides}
        for number in range(args.repeat):
            shift = number % len(args.sides)
            for side in list(args.sides[shift:]) + list(args.sides[:shift]):
                rounds[side].append(spawn(args, workdir, side, f"{side}-{number}"))
        check = spawn(args, workdir, "compare", "compare") if "ours" in args.sides and len(args.sides) > 1 else {}
    finally:
        if not args.workdir:
            shutil.rmtree(workdir.root, ignore_errors=True)
    result.update(assemble(args, shape, prepared, rounds, check))
    return result


def side_seconds(side: str, figures: dict[str, Any]) -> float:
    """The figure compared: the first call (ours, Feast) or the whole process (pandas)."""
    return figures["calls"][0]["seconds"] if side in SPARK_SIDES else figures["process_seconds"]


def assemble(args: argparse.Namespace, shape: Shape, prepared: dict[str, Any],
             rounds: dict[str, list[dict[str, Any]]], check: dict[str, Any]) -> dict[str, Any]:
    """Turn the workers' figures into measurements, ratios, tables and notes."""
    names = {"ours": "featurelake create_training_set (fresh process, first call)",
             "feast": "Feast get_historical_features, Spark offline store (fresh process, first call)",
             "pandas": "pandas merge_asof (whole process: start, imports, read, join, write)"}
    measurements, per_round = [], []
    for side, runs in rounds.items():
        times = [side_seconds(side, r) for r in runs]
        loads = [r["calls"][0]["load_before"] if side in SPARK_SIDES else r["process_load_before"] for r in runs]
        m = {"name": names[side], "rows": shape.labels, "seconds": round(statistics.median(times), 3),
             "all_seconds": [round(t, 3) for t in times], "rows_per_second": round(shape.labels / statistics.median(times)),
             "load_before": loads[0], "loads_before": loads}
        if side in SPARK_SIDES:
            m["jvm_cpu_seconds"] = round(statistics.median(r["calls"][0]["jvm_cpu_seconds"] for r in runs), 2)
            m["peak_driver_rss_mib"] = max(r["peak_driver_rss_mib"] for r in runs)
            m["peak_jvm_rss_mib"] = max(r["peak_jvm_rss_mib"] for r in runs)
            m["peak_python_rss_mib"] = max(r["peak_python_rss_mib"] for r in runs)
            if args.calls > 1:
                m["later_calls_seconds"] = [c["seconds"] for r in runs for c in r["calls"][1:]]
        measurements.append(m)
    for number in range(args.repeat):
        row: dict[str, Any] = {"round": number + 1}
        for side, runs in rounds.items():
            row[f"{side} s"] = round(side_seconds(side, runs[number]), 2)
            row[f"{side} load"] = (runs[number]["calls"][0]["load_before"] if side in SPARK_SIDES
                                   else runs[number]["process_load_before"])[0]
        if "feast" in rounds and "ours" in rounds:
            row["Feast / ours"] = ratio(row["feast s"], row["ours s"])
        if "pandas" in rounds and "ours" in rounds:
            row["ours / pandas"] = ratio(row["ours s"], row["pandas s"])
        per_round.append(row)
    by_side = {m["name"]: m for m in measurements}
    seconds = {side: by_side[names[side]]["seconds"] for side in rounds}
    equal = _equal(check, shape, rounds)
    ratios = []
    if "feast" in seconds and "ours" in seconds:
        speedup = ratio(seconds["feast"], seconds["ours"])
        ratios.append(target_row("Feast time / featurelake time (medians)", speedup, ">= 4",
                                 speedup is not None and speedup >= 4))
        cpu = ratio(by_side[names["feast"]]["jvm_cpu_seconds"], by_side[names["ours"]]["jvm_cpu_seconds"])
        ratios.append(target_row("Feast JVM CPU / featurelake JVM CPU (load-robust)", cpu, ">= 4",
                                 cpu is not None and cpu >= 4))
    if "pandas" in seconds and "ours" in seconds:
        slower = ratio(seconds["ours"], seconds["pandas"])
        ratios.append(target_row("featurelake time / pandas merge_asof whole process", slower, "<= 6",
                                 slower is not None and slower <= 6))
    if equal is not None:
        ratios.append(target_row("results identical", 1.0 if equal else 0.0, "identical", equal))
    details = [{"side": side, "round": n + 1, **{k: v for k, v in call.items()}}
               for side, runs in rounds.items() if side in SPARK_SIDES
               for n, r in enumerate(runs) for call in r["calls"][:1]]
    plans = [{"side": side, **runs[0]["plan"]} for side, runs in rounds.items() if side in SPARK_SIDES]
    summary = [", ".join(f"{side} {seconds[side]} s" for side in seconds) + f" on {shape.labels:,} labels "
               f"(median of {args.repeat} fresh processes per side, interleaved; load "
               f"{measurements[0]['loads_before']} at the start of ours)"]
    summary += [f"{r['ratio']}: {r['value']} (target {r['target']}, met: {r['met']})" for r in ratios]
    return {"measurements": measurements, "equal": equal, "equality_check": check, "ratios": ratios,
            "prepare": prepared, "summary": summary,
            "tables": {"Rounds (each side in a fresh process, order rotated per round)": per_round,
                       "Each call: time, planning, JVM CPU, Spark jobs": details,
                       "Physical plan operators": plans},
            "notes": ["The machine was shared with other work while this ran (load averages above); the ratios "
                      "between sides timed in the same round are what matter, absolute times are inflated.",
                      "ours and Feast: from the call until the result is in the sink, in a fresh process "
                      "after its session started (not timed); pandas: the whole process, as a user runs it.",
                      f"pandas writes its result as parquet whatever --sink is ({args.sink} here)."]}


def _equal(check: dict[str, Any], shape: Shape, rounds: dict[str, Any]) -> bool | None:
    if not check:
        return None
    pairs = [other for other in ("feast", "pandas") if other in rounds]
    return all(check[f"only_in_ours_vs_{o}"] == 0 and check[f"only_in_{o}"] == 0
               and check["rows_ours"] == check[f"rows_{o}"] == shape.labels for o in pairs) and bool(pairs)


def build_parser() -> argparse.ArgumentParser:
    """Return the benchmark's argument parser."""
    parser = base_parser("benchmarks.training_set", __doc__.splitlines()[0])
    parser.add_argument("--labels", type=int, default=BASE_LABELS, help="label rows at scale 1 (default 100k)")
    parser.add_argument("--entities", type=int, default=BASE_ENTITIES, help="entities at scale 1 (default 10k)")
    parser.add_argument("--rows-per-entity", type=int, default=5, help="feature rows per entity and table")
    parser.add_argument("--features-per-table", type=int,
                        help="that many double features per table (default: the original 7 mixed features)")
    parser.add_argument("--ttl-days", type=int,
                        help="a ttl of that many days on every table, so every lookup (default: 30 days on one table)")
    parser.add_argument("--tie-fraction", type=float, default=0.0,
                        help="share of labels exactly at one of their entity's feature-row timestamps (e.g. 0.01)")
    parser.add_argument("--label-time-unit", choices=("us", "ns"), default="us",
                        help="unit pandas stores the label timestamps in (ns: pandas' default)")
    parser.add_argument("--sink", choices=SINKS, default="noop", help="where ours and Feast put the result")
    parser.add_argument("--sides", nargs="+", choices=SIDES, default=list(SIDES), help="what to time")
    parser.add_argument("--calls", type=int, default=1,
                        help="timed calls per process for ours and Feast (the first is the one compared)")
    parser.add_argument("--in-process", action="store_true",
                        help="run every side in this process on one session (a quick check, not a fresh-process figure)")
    parser.add_argument("--worker", choices=("prepare", "compare", *SIDES), help=argparse.SUPPRESS)
    parser.add_argument("--figures", help=argparse.SUPPRESS)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit code (1 when the results differ)."""
    return main_for(NAME, build_parser(), run, argv, worker=run_worker)


if __name__ == "__main__":
    sys.exit(main())
