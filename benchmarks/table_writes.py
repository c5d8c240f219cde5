"""Benchmark: feature-table writes, MERGE upsert vs plain overwrite (full and incremental).

Timed writes into a Delta feature table of N rows (keys, timestamp, 4 double features):

1. full upsert: ``rewrite_upsert`` of N rows (every feature value changed) into the existing
   table, one full outer join and one overwrite commit: what ``write_feature_table`` (and so
   ``featurelake build``) runs for rows that span the whole table; then the same rows through
   ``write_feature_table`` itself, which adds its metadata checks and history reads;
2. full MERGE: ``merge_into`` of the same rows, Delta's MERGE (for reference);
3. overwrite: a plain ``mode("overwrite")`` Delta write of the same N rows (the anchor);
4. incremental MERGE: ``merge_into`` of 1% of the rows, changed (half updates, half new keys);
5. rewrite: overwriting the whole table with the same change applied (N rows).

Then the incremental case of a feature table with history: N rows over ``--days`` days, one
file per day, and 1% changed rows all dated the latest day (half updates, half new keys).
``merge_into`` with the source's time range (what ``featurelake build`` passes) is timed
against the same MERGE without it and against rewriting the table; a one-row append measures
the cost of any Delta commit here, the floor under every write.

Sources are staged as parquet first, so every write reads the same files from disk. The
table is reset (overwritten with the base rows, untimed) before each timed write. The writes
compared with each other are timed in rounds (``benchmarks.common.measure_rounds``): an untimed
full-size warm-up round, then each write once per round in rotating order. A first full-size
join in a JVM runs before the JIT has compiled it (slower than the warm runs: the results keep
its time as ``first_run_seconds``), while every
reset already warms the overwrite's code path; timed one after another, the writes would not
be compared on equal terms.

    python -m benchmarks.table_writes               # N = 100k
    python -m benchmarks.table_writes --scale 10    # the issue's 1M rows
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from benchmarks.common import (WRITE_STEPS, MemorySampler, base_parser, create_feature_table, main_for,
                               measure_rounds, ratio, result_header, target_row, timed_steps)
from featurestore.core.config import Config, resolve_paths
from featurestore.definitions import FeatureTable, Field
from featurestore import delta_tables
from featurestore.core.identifiers import quote_path
from featurestore.delta_tables import merge_into, rewrite_upsert, write_feature_table
from featurestore.runtime.spark_session import get_spark
from featurestore.validation import ValidatedFrame, validate_feature_frame

logger = logging.getLogger(__name__)

NAME = "table_writes"
BASE_ROWS = 100_000
START = "2025-01-01 00:00:00"
TABLE = FeatureTable(
    name="bench_writes", primary_keys=[Field("entity_id", "bigint", "Entity id")], timestamp_key="ts",
    features=[Field(f"f{i}", "double", f"feature {i}") for i in range(4)], description="benchmark writes",
)


def rows(spark: SparkSession, n: int, first_id: int = 0, version: int = 0, partitions: int | None = None) -> DataFrame:
    """``n`` feature rows with ids from ``first_id`` (in ``partitions`` id ranges); ``version`` changes every value."""
    df = spark.range(first_id, first_id + n, 1, partitions)
    ts = (F.unix_timestamp(F.lit(START)) + (F.col("id") % 86400)).cast("timestamp")
    features = [((F.abs(F.hash(F.col("id"), F.lit(i), F.lit(version))) % 100_000) / 100.0).cast("double")
                .alias(f"f{i}") for i in range(4)]
    return df.select(F.col("id").alias("entity_id"), ts.alias("ts"), *features)


def dated_rows(spark: SparkSession, n: int, days: int, first_id: int = 0, version: int = 0,
               day: int | None = None, partitions: int | None = None) -> DataFrame:
    """``rows`` spread over ``days`` days (ids in day order), or all on ``day`` when given."""
    df = rows(spark, n, first_id, version, partitions)
    day_of_row = F.lit(day) if day is not None else (F.col("entity_id") * days / n).cast("bigint")
    return df.withColumn("ts", (F.col("ts").cast("long") + day_of_row * 86400).cast("timestamp"))


def stage(spark: SparkSession, df: DataFrame, path: Path, partitions: int) -> DataFrame:
    """Write ``df`` as parquet at ``path`` and return it read back."""
    df.repartition(partitions).write.mode("overwrite").parquet(str(path))
    return spark.read.parquet(str(path))


def overwrite(df: DataFrame, path: str) -> None:
    """Plain Delta overwrite (the anchor)."""
    df.write.format("delta").mode("overwrite").save(path)


def build_parser() -> argparse.ArgumentParser:
    """Return the benchmark's argument parser."""
    parser = base_parser("benchmarks.table_writes", __doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=BASE_ROWS, help="table rows at scale 1 (default 100k)")
    parser.add_argument("--changed-fraction", type=float, default=0.01, help="incremental change (default 0.01)")
    parser.add_argument("--partitions", type=int, default=4, help="files per write (default 4)")
    parser.add_argument("--no-deletion-vectors", action="store_true",
                        help="skip the incremental MERGE with deletion vectors enabled")
    parser.add_argument("--days", type=int, default=10,
                        help="days of history in the table of the latest-day case (default 10, one file each)")
    parser.add_argument("--no-warmup", action="store_true",
                        help="skip the untimed warm-up round of each group (a smoke test; the figures are then cold)")
    return parser


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Stage the data, time the four writes; return the results."""
    n = int(args.rows * args.scale)
    changed = max(2, int(n * args.changed_fraction))
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="bench_writes_"))
    result = result_header(NAME, args, {"table_rows": n, "changed_rows": changed, "features": 4,
                                        "files_per_write": args.partitions})
    config = resolve_paths(Config(warehouse="warehouse"), workdir)
    config.spark.master = "local[2]"
    spark = get_spark(config)
    path = config.table_path(TABLE.name)
    try:
        with MemorySampler() as sampler:
            base = stage(spark, rows(spark, n), workdir / "base", args.partitions)
            full = stage(spark, rows(spark, n, version=1), workdir / "full", args.partitions)
            # 1%: half of it updates existing keys (spread over the whole key range), half new keys.
            updates = rows(spark, n, version=2).filter(F.col("entity_id") % (2 * n // changed) == 0)
            inserts = rows(spark, changed // 2, first_id=n, version=2)
            delta = stage(spark, updates.unionByName(inserts), workdir / "delta", 1)
            rewritten = stage(
                spark,
                base.join(delta.select("entity_id"), "entity_id", "left_anti").unionByName(delta),
                workdir / "rewritten", args.partitions)
            delta_rows = delta.count()

            create_feature_table(spark, TABLE, path, base)
            full_validated = validate_feature_frame(TABLE, full)  # untimed: the build validates before it writes

            def reset() -> None:
                overwrite(base, path)

            def upsert(validated: ValidatedFrame) -> None:
                write_feature_table(spark, TABLE, path, validated.df, rows=validated.rows,
                                    time_range=validated.time_range)

            # Each group of writes is timed in rounds (benchmarks.common.measure_rounds): an untimed
            # full-size warm-up round, then every write once per round, so the overwrite (whose code
            # path every reset runs) is no warmer than the writes it anchors.
            m_upsert, m_upsert_wft, m_merge, m_over = measure_rounds([
                ("full upsert (rewrite_upsert: one join + overwrite, all rows changed)",
                 lambda: rewrite_upsert(spark, TABLE, path, full_validated.df), n),
                ("full upsert through write_feature_table (+ metadata checks, history reads)",
                 lambda: upsert(full_validated), n),
                ("full MERGE (merge_into, all rows changed)", lambda: merge_into(spark, TABLE, path, full), n),
                ("plain overwrite of the same rows", lambda: overwrite(full, path), n),
            ], sampler, args.repeat, reset, warmup=not args.no_warmup)
            reset()
            with timed_steps(delta_tables, WRITE_STEPS) as steps:  # the check run, profiled (warm by now)
                started = time.perf_counter()
                upsert(full_validated)
                steps.append({"step": "write_feature_table in all", "seconds": round(time.perf_counter() - started, 3)})
            upsert_operation = DeltaTable.forPath(spark, path).history(1).first()["operation"]
            if upsert_operation != "WRITE":
                raise RuntimeError(f"the full upsert should rewrite the table, its commit was a {upsert_operation}")
            upserted = spark.read.format("delta").load(path)
            upsert_equal = upserted.count() == n and upserted.exceptAll(full).count() == 0
            m_inc, m_wft, m_rewrite = measure_rounds([
                (f"incremental MERGE ({args.changed_fraction:.0%} changed, merge_into)",
                 lambda: merge_into(spark, TABLE, path, delta), delta_rows),
                ("incremental write_feature_table (what `featurelake build` runs)",
                 lambda: write_feature_table(spark, TABLE, path, delta), delta_rows),
                ("rewrite the whole table with the change", lambda: overwrite(rewritten, path), n),
            ], sampler, args.repeat, reset, warmup=not args.no_warmup)
            reset()
            merge_into(spark, TABLE, path, delta)
            check_merged = spark.read.format("delta").load(path)
            equal = (upsert_equal and check_merged.count() == rewritten.count()
                     and check_merged.exceptAll(rewritten).count() == 0)
            files = _files_touched(spark, path)
            metrics = [{"table": "default properties", **files}]
            m_dv = None
            if not args.no_deletion_vectors:
                # The same incremental MERGE with Delta deletion vectors on (a candidate optimisation).
                spark.sql(f"ALTER TABLE {quote_path(path)} SET TBLPROPERTIES ('delta.enableDeletionVectors' = 'true')")
                [m_dv] = measure_rounds([("incremental MERGE, deletion vectors enabled",
                                          lambda: merge_into(spark, TABLE, path, delta), delta_rows)],
                                        sampler, args.repeat, reset, warmup=not args.no_warmup)
                metrics.append({"table": "delta.enableDeletionVectors=true", **_files_touched(spark, path)})
                dv_table = spark.read.format("delta").load(path)
                equal = equal and dv_table.count() == rewritten.count() and dv_table.exceptAll(rewritten).count() == 0
            latest = latest_day_case(spark, args, n, changed, workdir, f"{path}_by_day", sampler)
            equal = equal and latest["equal"]
    finally:
        if not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    full_ratio = ratio(m_upsert["seconds"], m_over["seconds"])
    merge_ratio = ratio(m_merge["seconds"], m_over["seconds"])
    wft_ratio = ratio(m_upsert_wft["seconds"], m_over["seconds"])
    inc_ratio = ratio(m_rewrite["seconds"], m_inc["seconds"])
    m_pruned, m_unpruned, m_latest_rewrite, m_floor = latest["measurements"]
    latest_ratio = ratio(m_latest_rewrite["seconds"], m_pruned["seconds"])
    floor_ratio = ratio(m_latest_rewrite["seconds"], m_floor["seconds"])
    result.update(
        measurements=[m for m in (m_upsert, m_upsert_wft, m_merge, m_over, m_inc, m_wft, m_rewrite, m_dv) if m is not None]
        + latest["measurements"],
        equal=equal,
        ratios=[
            target_row("full upsert (rewrite_upsert) time / overwrite time", full_ratio, "<= 2",
                       full_ratio is not None and full_ratio <= 2),
            target_row("full upsert through write_feature_table time / overwrite time", wft_ratio, "(reference)",
                       None),
            target_row("full Delta MERGE (merge_into) time / overwrite time", merge_ratio, "(reference)", None),
            target_row("rewrite time / incremental MERGE time", inc_ratio, ">= 10",
                       inc_ratio is not None and inc_ratio >= 10),
            target_row(f"latest day: rewrite time / incremental MERGE time ({args.days} days, time range)",
                       latest_ratio, ">= 10", latest_ratio is not None and latest_ratio >= 10),
            target_row("latest day: rewrite time / one-row append time (the best any commit can do)",
                       floor_ratio, "(bound)", None),
            target_row("upserted and merged tables == the expected rows", 1.0 if equal else 0.0, "identical", equal),
        ],
        tables={"write_feature_table's steps, one full upsert after the timed rounds": steps,
                "Incremental MERGE (Delta operation metrics)": metrics,
                "Latest-day MERGE (Delta operation metrics)": latest["metrics"]},
        notes=_notes(full_ratio, merge_ratio, inc_ratio, m_inc, m_dv, m_rewrite, metrics)
        + [_steps_note(m_upsert_wft, m_upsert, steps)]
        + _latest_notes(latest_ratio, floor_ratio, m_pruned, m_unpruned, m_floor, args.days),
        summary=[f"full upsert of {n:,} rows {m_upsert['seconds']} s vs overwrite {m_over['seconds']} s: "
                 f"{full_ratio}x the overwrite (target <= 2x); through write_feature_table {m_upsert_wft['seconds']} s "
                 f"({wft_ratio}x); Delta's MERGE of the same rows {m_merge['seconds']} s ({merge_ratio}x)",
                 f"incremental MERGE of {delta_rows:,} rows {m_inc['seconds']} s vs rewrite {m_rewrite['seconds']} s: "
                 f"{inc_ratio}x faster (target >= 10x)",
                 f"latest-day MERGE of {m_pruned['rows']:,} rows into {args.days} days of history {m_pruned['seconds']} s "
                 f"(without the time range {m_unpruned['seconds']} s) vs rewrite {m_latest_rewrite['seconds']} s: "
                 f"{latest_ratio}x faster; a one-row append takes {m_floor['seconds']} s"],
    )
    return result


def latest_day_case(spark: SparkSession, args: argparse.Namespace, n: int, changed: int, workdir: Path, path: str,
                    sampler: MemorySampler) -> dict[str, Any]:
    """Time the latest-day incremental MERGE (with and without the time range), its rewrite and a one-row append."""
    days = args.days
    if n % days:
        raise ValueError(f"the latest-day case needs the table's {n:,} rows to split evenly into --days {days}")
    base = dated_rows(spark, n, days, partitions=days)  # one id range, so one day, per partition
    last_day = days - 1
    first_of_last = n * last_day // days  # the first id whose day is the last
    per_day = n - first_of_last
    updates = dated_rows(spark, n, days, version=2).filter(
        (F.col("entity_id") >= first_of_last) & (F.col("entity_id") % max(1, 2 * per_day // changed) == 0))
    inserts = dated_rows(spark, changed // 2, days, first_id=n, version=2, day=last_day)
    change = stage(spark, updates.unionByName(inserts), workdir / "latest_change", 1)
    rewritten = stage(spark, base.join(change.select("entity_id"), "entity_id", "left_anti").unionByName(change),
                      workdir / "latest_rewritten", args.partitions)
    one_row = stage(spark, dated_rows(spark, 1, days, first_id=2 * n, day=last_day), workdir / "one_row", 1)
    validated = validate_feature_frame(TABLE, change)
    change_rows = validated.rows

    def reset() -> None:  # one file per day, as daily builds leave the table
        base.write.format("delta").mode("overwrite").save(path)

    create_feature_table(spark, TABLE, path, base.limit(0))
    reset()
    day = F.floor((F.col("ts").cast("long") - F.unix_timestamp(F.lit(START))) / 86400)
    days_per_file = (spark.read.format("delta").load(path).groupBy("_metadata.file_path")
                     .agg(F.countDistinct(day).alias("days")).agg(F.count("*"), F.max("days")).first())
    if tuple(days_per_file) != (days, 1):
        raise RuntimeError(f"the table of the latest-day case should hold one file per day, got {tuple(days_per_file)}"
                           " (files, most days in a file)")

    def pruned() -> None:
        merge_into(spark, TABLE, path, validated.df, validated.time_range)

    def unpruned() -> None:
        merge_into(spark, TABLE, path, validated.df)

    m_pruned, m_unpruned, m_rewrite, m_floor = measure_rounds([
        (f"latest-day MERGE, {args.changed_fraction:.0%} changed (merge_into with the time range)", pruned, change_rows),
        ("latest-day MERGE without the time range (merge_into)", unpruned, change_rows),
        ("latest day: rewrite the whole table with the change", lambda: overwrite(rewritten, path), n),
        ("floor: append one row (any Delta commit)",
         lambda: one_row.write.format("delta").mode("append").save(path), 1),
    ], sampler, args.repeat, reset, warmup=not args.no_warmup)
    reset()
    unpruned()
    unpruned_metrics = {"table": f"{days} days, no time range", **_files_touched(spark, path)}
    reset()
    pruned()
    metrics = [{"table": f"{days} days, time range", **_files_touched(spark, path)}, unpruned_metrics]
    merged = spark.read.format("delta").load(path)
    equal = merged.count() == rewritten.count() and merged.exceptAll(rewritten).count() == 0
    return {"measurements": [m_pruned, m_unpruned, m_rewrite, m_floor], "equal": equal, "metrics": metrics}


def _latest_notes(latest_ratio: float | None, floor_ratio: float | None, m_pruned: dict, m_unpruned: dict,
                  m_floor: dict, days: int) -> list[str]:
    """Explain the latest-day case: what the time range saved, and the bound a one-row commit sets."""
    notes = [f"latest-day MERGE into {days} days of history: {m_pruned['seconds']} s with the source's time range "
             f"(Delta skips the files of earlier days by their timestamp statistics), {m_unpruned['seconds']} s "
             "without it (the MERGE reads every file to find the rows it touches)."]
    if latest_ratio is not None and latest_ratio < 10 and floor_ratio is not None and floor_ratio < 10:
        notes.append(f"a one-row append, the least any Delta commit costs here (snapshot, commit, checkpoint "
                     f"every 10 commits), takes {m_floor['seconds']} s: rewriting this table is only {floor_ratio}x "
                     "that, so no write can be 10x faster than the rewrite at this size; the rewrite grows with "
                     "the table, the latest-day MERGE with the latest day's files.")
    return notes


def _steps_note(m_upsert_wft: dict, m_upsert: dict, steps: list[dict[str, Any]]) -> str:
    """Say where write_feature_table's time beyond the upsert itself went, from the profiled run."""
    parts = ", ".join(f"{s['step']} {s['seconds']} s" for s in steps)
    return (f"write_feature_table adds fixed costs to every write of an existing table, {m_upsert_wft['seconds']} s "
            f"vs {m_upsert['seconds']} s here. Its steps in one profiled run: {parts}. current_version and "
            "_last_commit read the history (the versions before and after); sync_metadata runs DESCRIBE DETAIL to keep "
            "properties and comments current, which also rebuilds the file list of the table's newest commit (the "
            "upsert alone pays that itself); source_spans_table counts the rows and checks the file statistics that "
            "choose between rewrite and MERGE.")


def _notes(full_ratio: float | None, merge_ratio: float | None, inc_ratio: float | None, m_inc: dict,
           m_dv: dict | None, m_rewrite: dict, metrics: list[dict[str, Any]]) -> list[str]:
    """Explain missed targets from the MERGE metrics (what was rewritten, where the time went)."""
    notes = [f"full upsert: the rows span the whole table, so write_feature_table rewrites it: one full outer join "
             f"of table and rows (hash join), one overwrite commit, {full_ratio}x the overwrite. Delta's MERGE of the "
             f"same rows, {merge_ratio}x, joins them twice: once to find the files it touches, again to rewrite them."]
    plain = metrics[0]
    if full_ratio is not None and full_ratio > 2:
        notes.append(f"full upsert is {full_ratio}x the overwrite (target 2x, missed by {full_ratio / 2:.2f}x): it "
                     "reads the table and joins it with the new rows on keys + timestamp before it writes, an "
                     "overwrite only writes.")
    if inc_ratio is not None and inc_ratio < 10:
        notes.append(
            f"incremental MERGE is only {inc_ratio}x as fast as the rewrite (target 10x): it removed {plain.get('numTargetFilesRemoved')} file(s), added {plain.get('numTargetFilesAdded')} "
            f"and copied {plain.get('numTargetRowsCopied')} unchanged rows (Delta: scan {plain.get('scanTimeMs')} ms, "
            f"rewrite {plain.get('rewriteTimeMs')} ms of {plain.get('executionTimeMs')} ms): the changed keys are "
            "spread over every file, so copy-on-write MERGE rewrites most of the table.")
    if m_dv is not None:
        dv = metrics[-1]
        notes.append(
            f"with deletion vectors the same MERGE took {m_dv['seconds']} s "
            f"({ratio(m_rewrite['seconds'], m_dv['seconds'])}x faster than the rewrite, vs {m_inc['seconds']} s without): it added "
            f"{dv.get('numTargetDeletionVectorsAdded')} deletion vector(s) and copied {dv.get('numTargetRowsCopied')} rows "
            "instead of rewriting files. Enabling them (table property delta.enableDeletionVectors) needs readers "
            "with Delta reader version 3 / the deletionVectors feature.")
    return notes


def _files_touched(spark: SparkSession, path: str) -> dict[str, Any]:
    """Operation metrics of the last MERGE: files removed/added, rows copied (what a MERGE rewrites)."""
    last = DeltaTable.forPath(spark, path).history(1).first()
    metrics = last["operationMetrics"] or {}
    keep = ("numTargetFilesRemoved", "numTargetFilesAdded", "numTargetRowsCopied", "numTargetRowsUpdated",
            "numTargetRowsInserted", "numTargetDeletionVectorsAdded", "executionTimeMs", "scanTimeMs",
            "rewriteTimeMs")
    return {"operation": last["operation"], **{k: metrics.get(k) for k in keep if k in metrics}}


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit code (1 when merged and rewritten tables differ)."""
    return main_for(NAME, build_parser(), run, argv)


if __name__ == "__main__":
    sys.exit(main())
