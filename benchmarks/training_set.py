"""Benchmark: point-in-time training set, featurelake vs Feast's get_historical_features.

Both sides read the same Delta feature tables (3 tables, several rows per entity, one with a
ttl) and the same label rows; both results are computed in full (written to Spark's ``noop``
sink) and then compared row for row (``exceptAll`` both ways), so the figures are only
reported for identical results.

    python -m benchmarks.training_set               # 100k labels, 10k entities, 3 x 50k feature rows
    python -m benchmarks.training_set --scale 10    # the issue's 1M labels, 100k entities
"""

from __future__ import annotations

import argparse
import logging
import shutil
import statistics
import sys
import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Any

import psutil
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from benchmarks.common import (MemorySampler, base_parser, compute_all, create_feature_table, main_for, measure, ratio,
                               result_header, target_row)
from featurestore.core.config import Config, resolve_paths
from featurestore.definitions import FeatureTable, Field
from featurestore.feast_repo import feature_store, register_tables
from featurestore.runtime.spark_session import get_spark

logger = logging.getLogger(__name__)

NAME = "training_set"
BASE_LABELS = 100_000
BASE_ENTITIES = 10_000
YEAR_SECONDS = 365 * 86400
START = "2025-01-01 00:00:00"
TTL = timedelta(days=30)


def tables() -> list[FeatureTable]:
    """The three benchmark feature tables (distinct feature names; the third has a ttl)."""
    key = [Field("customer_id", "bigint", "Customer id")]
    return [
        FeatureTable(name="bench_profile", primary_keys=key, timestamp_key="ts",
                     features=[Field("p_age", "double", "age"), Field("p_fee", "double", "fee"),
                               Field("p_country", "string", "country")],
                     description="benchmark profile"),
        FeatureTable(name="bench_spend", primary_keys=key, timestamp_key="ts",
                     features=[Field("s_count", "bigint", "count"), Field("s_total", "double", "total")],
                     description="benchmark spend"),
        FeatureTable(name="bench_activity", primary_keys=key, timestamp_key="ts",
                     features=[Field("a_logins", "double", "logins"), Field("a_minutes", "double", "minutes")],
                     description="benchmark activity", ttl=TTL),
    ]


def _feature_rows(spark: SparkSession, table: FeatureTable, entities: int, per_entity: int, seed: int) -> DataFrame:
    """``per_entity`` rows per entity at distinct, evenly spread (jittered) times over a year."""
    period = YEAR_SECONDS // per_entity
    df = spark.range(entities * per_entity).select(
        (F.col("id") % entities).alias("customer_id"),
        (F.col("id") / entities).cast("long").alias("r"),
        F.col("id"),
    )
    jitter = (F.abs(F.hash(F.col("id"), F.lit(seed))) % (period - 1)).cast("long")
    ts = (F.unix_timestamp(F.lit(START)) + F.col("r") * period + jitter).cast("timestamp")
    values = []
    for i, feature in enumerate(table.features):
        raw = F.abs(F.hash(F.col("id"), F.lit(seed * 10 + i))) % 10_000
        if feature.dtype == "double":
            values.append((raw / 100.0).cast("double").alias(feature.name))
        elif feature.dtype == "bigint":
            values.append(raw.cast("bigint").alias(feature.name))
        else:
            values.append(F.concat(F.lit("c"), (raw % 30).cast("string")).alias(feature.name))
    return df.select("customer_id", ts.alias("ts"), *values)


def _label_rows(spark: SparkSession, labels: int, entities: int) -> DataFrame:
    """``labels`` rows, labels/entities per entity, at distinct times per entity."""
    per_entity = max(1, labels // entities)
    period = YEAR_SECONDS // per_entity
    df = spark.range(labels).select((F.col("id") % entities).alias("customer_id"),
                                    (F.col("id") / entities).cast("long").alias("r"), F.col("id"))
    jitter = (F.abs(F.hash(F.col("id"), F.lit(7))) % (period - 1)).cast("long")
    return df.select(
        "customer_id",
        (F.unix_timestamp(F.lit(START)) + F.col("r") * period + jitter).cast("timestamp").alias("event_timestamp"),
        (F.abs(F.hash(F.col("id"), F.lit(8))) % 2).cast("bigint").alias("label"),
    )


def prepare(spark: SparkSession, config: Config, labels: int, entities: int, per_entity: int) -> str:
    """Write the feature tables (Delta, with featurelake metadata), register them in Feast,
    write the labels (parquet); return the labels path."""
    defs = tables()
    for i, table in enumerate(defs):
        path = config.table_path(table.name)
        create_feature_table(spark, table, path,
                             _feature_rows(spark, table, entities, per_entity, seed=i + 1).repartition(2))
    register_tables(config, defs)
    labels_path = str(Path(config.base_dir) / "labels.parquet")
    _label_rows(spark, labels, entities).repartition(2).write.mode("overwrite").parquet(labels_path)
    return labels_path


def lookups() -> list:
    """Our lookups: every feature of every table, point in time on event_timestamp."""
    from featurestore.training_set import FeatureLookup

    return [FeatureLookup(t.name, timestamp_lookup_key="event_timestamp") for t in tables()]


def feast_refs() -> list[str]:
    """Feast's feature references for the same features."""
    return [f"{t.name}:{f.name}" for t in tables() for f in t.features]


def ours(spark: SparkSession, config: Config, labels: DataFrame) -> DataFrame:
    """featurelake's training set (create_training_set)."""
    from featurestore.training_set import create_training_set

    return create_training_set(spark, config, labels, lookups(), label="label").df


def feast(spark: SparkSession, store: Any, labels: DataFrame) -> DataFrame:
    """Feast's historical features for the same labels."""
    job = store.get_historical_features(entity_df=labels, features=feast_refs())
    df = job.to_spark_df()
    # Feast switches this on for the whole session; switch it back so our SQL is unaffected.
    spark.conf.set("spark.sql.parser.quotedRegexColumnNames", "false")
    return df


def columns() -> list[str]:
    """The result columns compared (labels, then every feature)."""
    return ["customer_id", "event_timestamp", "label"] + [f.name for t in tables() for f in t.features]


def compare(a: DataFrame, b: DataFrame) -> dict[str, int]:
    """Row-for-row comparison (multiset) of the two results on :func:`columns`."""
    a, b = a.select(*columns()), b.select(*columns())
    return {"rows_ours": a.count(), "rows_feast": b.count(),
            "only_in_ours": a.exceptAll(b).count(), "only_in_feast": b.exceptAll(a).count(),
            "feature_nulls_ours": a.filter(F.col("a_logins").isNull()).count()}


def executed_plan_summary(df: DataFrame) -> dict[str, int]:
    """Count the expensive operators of the physical plan (a cheap, static profile)."""
    plan = df._jdf.queryExecution().executedPlan().toString()
    return {op: plan.count(op) for op in ("Exchange", "SortMergeJoin", "BroadcastHashJoin",
                                          "BroadcastNestedLoopJoin", "Window", "Sort ", "HashAggregate",
                                          "Scan parquet")}


def stage_times(spark: SparkSession, group: str) -> list[dict[str, Any]]:
    """Stage ids, task counts and run time (ms) of the jobs of ``group`` (status tracker)."""
    tracker = spark.sparkContext.statusTracker()
    rows = []
    for job_id in tracker.getJobIdsForGroup(group):
        job = tracker.getJobInfo(job_id)
        if job is None:
            continue
        for stage_id in job.stageIds:
            stage = tracker.getStageInfo(stage_id)
            if stage is not None:
                rows.append({"side": group, "job": job_id, "stage": stage_id, "tasks": stage.numTasks,
                             "name": stage.name.split(" at ")[0]})
    return rows


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


def build_parser() -> argparse.ArgumentParser:
    """Return the benchmark's argument parser."""
    parser = base_parser("benchmarks.training_set", __doc__.splitlines()[0])
    parser.add_argument("--labels", type=int, default=BASE_LABELS, help="label rows at scale 1 (default 100k)")
    parser.add_argument("--entities", type=int, default=BASE_ENTITIES, help="entities at scale 1 (default 10k)")
    parser.add_argument("--rows-per-entity", type=int, default=5, help="feature rows per entity and table")
    parser.add_argument("--no-warmup", action="store_true", help="skip the untimed warm-up on 1%% of the labels")
    return parser


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Prepare the data, time both sides, check equality; return the results."""
    labels_n = int(args.labels * args.scale)
    entities = int(args.entities * args.scale)
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="bench_ts_"))
    result = result_header(NAME, args, {"label_rows": labels_n, "entities": entities, "feature_tables": 3,
                                        "feature_rows_per_table": entities * args.rows_per_entity,
                                        "features": len(feast_refs()), "ttl_table": "bench_activity (30 days)"})
    config = resolve_paths(Config(warehouse="warehouse"), workdir)
    config.spark.master = "local[2]"
    spark = get_spark(config)
    try:
        with MemorySampler() as sampler:
            labels_path = prepare(spark, config, labels_n, entities, args.rows_per_entity)
            labels = spark.read.parquet(labels_path)
            store = feature_store(config)
            if not args.no_warmup:
                sample = labels.filter(F.col("customer_id") % 100 == 0)
                compute_all(ours(spark, config, sample))
                compute_all(feast(spark, store, sample))

            cpu: dict[str, list[float]] = {"ours": [], "feast": []}

            def run_ours() -> None:
                spark.sparkContext.setJobGroup("ours", "featurelake training set")
                started = jvm_cpu_seconds()
                compute_all(ours(spark, config, labels))
                cpu["ours"].append(jvm_cpu_seconds() - started)

            def run_feast() -> None:
                spark.sparkContext.setJobGroup("feast", "feast historical features")
                started = jvm_cpu_seconds()
                compute_all(feast(spark, store, labels))
                cpu["feast"].append(jvm_cpu_seconds() - started)

            m_ours = measure("featurelake create_training_set", run_ours, labels_n, sampler, args.repeat)
            m_feast = measure("feast get_historical_features (spark)", run_feast, labels_n, sampler, args.repeat)
            m_ours["jvm_cpu_seconds"] = round(statistics.median(cpu["ours"]), 2)
            m_feast["jvm_cpu_seconds"] = round(statistics.median(cpu["feast"]), 2)
            spark.sparkContext.setJobGroup("plan", "planning only")
            m_plan_ours = measure("featurelake planning only (resolve lookups, build the plan)",
                                  lambda: ours(spark, config, labels), labels_n, sampler)
            m_plan_feast = measure("feast planning only (registry, entity min/max, SQL)",
                                   lambda: feast(spark, store, labels), labels_n, sampler)
            spark.sparkContext.setJobGroup("check", "equality check")
            check = compare(ours(spark, config, labels), feast(spark, store, labels))
            plans = {"ours": executed_plan_summary(ours(spark, config, labels)),
                     "feast": executed_plan_summary(feast(spark, store, labels))}
            stages = stage_times(spark, "ours") + stage_times(spark, "feast")
    finally:
        if not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    equal = (check["only_in_ours"] == 0 and check["only_in_feast"] == 0
             and check["rows_ours"] == check["rows_feast"] == labels_n)
    speedup = ratio(m_feast["seconds"], m_ours["seconds"])
    cpu_ratio = ratio(m_feast["jvm_cpu_seconds"], m_ours["jvm_cpu_seconds"])
    result.update(
        measurements=[m_ours, m_feast, m_plan_ours, m_plan_feast],
        equal=equal,
        equality_check=check,
        speedup_vs_feast=speedup,
        ratios=[target_row("Feast time / featurelake time", speedup, ">= 2", speedup is not None and speedup >= 2),
                target_row("Feast JVM CPU / featurelake JVM CPU (load-robust)", cpu_ratio, ">= 2",
                           cpu_ratio is not None and cpu_ratio >= 2),
                target_row("results identical", 1.0 if equal else 0.0, "identical", equal)],
        notes=_notes(speedup, m_ours, m_feast, m_plan_ours, m_plan_feast, plans, _stage_counts(stages)),
        tables={"Physical plan operators": [{"side": k, **v} for k, v in plans.items()],
                "Stages per side (last timed run)": _stage_counts(stages)},
        summary=[f"featurelake {m_ours['seconds']} s vs Feast {m_feast['seconds']} s on {labels_n:,} label rows: "
                 f"{speedup}x (target >= 2x); JVM CPU {m_ours['jvm_cpu_seconds']} s vs {m_feast['jvm_cpu_seconds']} s: "
                 f"{cpu_ratio}x; results {'identical' if equal else 'DIFFERENT'} "
                 f"({check['rows_ours']:,} rows, {check['feature_nulls_ours']:,} outside the ttl)."],
    )
    return result


def _notes(speedup: float | None, m_ours: dict, m_feast: dict, p_ours: dict, p_feast: dict,
           plans: dict[str, dict[str, int]], stage_counts: list[dict[str, Any]]) -> list[str]:
    """Where each side's time goes: planning (driver, metadata reads) vs execution, the plan shape, jobs."""
    jobs = {row["side"]: row for row in stage_counts}
    ours_jobs, feast_jobs = jobs.get("ours", {}), jobs.get("feast", {})
    notes = [
        f"planning alone: featurelake {p_ours['seconds']} s (per lookup: Delta log listing for the version, "
        f"snapshot, SHOW TBLPROPERTIES; no Spark job), Feast {p_feast['seconds']} s (registry, min/max of the "
        "entity timestamps: Spark jobs); execution therefore "
        f"~{max(m_ours['seconds'] - p_ours['seconds'], 0):.1f} s vs "
        f"~{max(m_feast['seconds'] - p_feast['seconds'], 0):.1f} s.",
        f"plan shape: featurelake {plans['ours'].get('Exchange')} exchange(s), "
        f"{plans['ours'].get('Window')} window(s), "
        f"{plans['ours'].get('SortMergeJoin')} sort-merge joins (labels and the 3 tables' rows in one union, one "
        f"window per key); Feast {plans['feast'].get('Exchange')} exchanges, {plans['feast'].get('Window')} windows, "
        f"{plans['feast'].get('SortMergeJoin')} sort-merge joins (range join per view, row_number, join back on a "
        "string row id).",
        f"Spark work per run: featurelake {ours_jobs.get('jobs')} jobs / {ours_jobs.get('stages')} stages / "
        f"{ours_jobs.get('tasks')} tasks (one Delta file-listing job per table, the shuffle, the result), Feast "
        f"{feast_jobs.get('jobs')} jobs / {feast_jobs.get('stages')} stages / {feast_jobs.get('tasks')} tasks; JVM CPU "
        f"{m_ours['jvm_cpu_seconds']} s vs {m_feast['jvm_cpu_seconds']} s.",
    ]
    if speedup is not None and speedup < 2:
        notes.append(
            f"target missed in wall time: {speedup}x instead of >= 2x ({2 / speedup:.2f}x short) at load "
            f"{m_ours['load_before'][0]}; at these sizes each side's time is dominated by fixed per-job and "
            "per-query costs (see the job counts above), which a loaded machine stretches unevenly.")
    return notes


def _stage_counts(stages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    counts: dict[str, dict[str, Any]] = {}
    for stage in stages:
        entry = counts.setdefault(stage["side"], {"side": stage["side"], "jobs": set(), "stages": 0, "tasks": 0})
        entry["jobs"].add(stage["job"])
        entry["stages"] += 1
        entry["tasks"] += stage["tasks"]
    return [{**v, "jobs": len(v["jobs"])} for v in counts.values()]


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit code (1 when the results differ)."""
    return main_for(NAME, build_parser(), run, argv)


if __name__ == "__main__":
    sys.exit(main())
