"""Benchmark: start-up, the smallest end-to-end job (`featurelake build` of one tiny table).

Two measurements, each in fresh processes, local mode:

1. wall time of ``featurelake build --config X`` from process start to exit (the target),
   on an empty warehouse (creates the table) and on a rerun (MERGE into the existing table);
2. where the time goes: the same steps run in a fresh profiling process
   (``--profile-child``) that timestamps each phase: Python start and imports, JVM launch
   with Ivy resolution of ``spark.jars.packages`` (Ivy's own "resolve N ms" is parsed from
   its report), the rest of the session start, reading the source, the first Delta write
   (create + MERGE), Feast apply, and the session stop / exit.

    python -m benchmarks.startup
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import base_parser, load_average, main_for, result_header, target_row

logger = logging.getLogger(__name__)

NAME = "startup"
TARGET_SECONDS = 15.0

DEFINITIONS = '''"""One tiny feature table for the start-up benchmark."""
from featurestore.definitions import FeatureTable, Field, Source


def tiny(spark, inputs):
    return inputs["tiny"]


FEATURE_TABLES = [
    FeatureTable(name="tiny", primary_keys=[Field("id", "bigint", "id")], timestamp_key="ts",
                 features=[Field("x", "double", "x")], sources=[Source("tiny", "tiny.parquet")],
                 transform=tiny, description="start-up benchmark table"),
]
'''

CONFIG = """warehouse: warehouse
source_root: .
definitions: tiny_tables.py
spark:
  master: local[2]
feast:
  repo_path: feast_repo
"""


def prepare(workdir: Path) -> Path:
    """Write the tiny source, definitions and configuration; return the configuration path."""
    import pandas as pd

    workdir.mkdir(parents=True, exist_ok=True)
    frame = pd.DataFrame({"id": [1, 2, 3], "x": [0.5, 1.5, 2.5],
                          "ts": pd.to_datetime(["2025-01-01", "2025-01-02", "2025-01-03"], utc=True)})
    frame["ts"] = frame["ts"].astype("datetime64[us, UTC]")
    frame.to_parquet(workdir / "tiny.parquet", index=False)
    (workdir / "tiny_tables.py").write_text(DEFINITIONS, encoding="utf-8")
    config = workdir / "featurelake.yaml"
    config.write_text(CONFIG, encoding="utf-8")
    return config


def clean(workdir: Path) -> None:
    """Remove the warehouse and Feast repository (next build starts from nothing)."""
    for name in ("warehouse", "feast_repo"):
        shutil.rmtree(workdir / name, ignore_errors=True)


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYSPARK_GATEWAY_PORT", None)
    return env


def time_build(config: Path) -> dict[str, Any]:
    """Run ``featurelake build`` in a fresh process; return its wall time and exit code."""
    load = load_average()
    started = time.perf_counter()
    proc = subprocess.run([shutil.which("featurelake") or "featurelake", "build", "--config", str(config)],
                          capture_output=True, text=True, env=_child_env(), cwd=config.parent)
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        logger.error("featurelake build failed:\n%s", proc.stderr[-3000:])
    return {"seconds": round(seconds, 2), "exit_code": proc.returncode, "load_before": load}


# ----------------------------------------------------------------- profiling child
def profile_child(config_path: str) -> dict[str, Any]:
    """Run the build's steps in this (fresh) process and timestamp each phase."""
    import psutil

    process_start = psutil.Process().create_time()
    marks: list[tuple[str, float]] = [("python start and imports", 0.0)]
    t0 = time.time()
    import pyspark.context

    from featurestore.build import compute_table, load_project_tables
    from featurestore.config import load_config
    from featurestore.delta_tables import write_feature_table
    from featurestore.feast_repo import register_tables
    from featurestore.spark_session import get_spark
    marks[0] = ("python start and imports", round(time.time() - process_start, 3))
    launch = {"seconds": 0.0}
    original = pyspark.context.launch_gateway

    def timed_launch(*args: Any, **kwargs: Any) -> Any:
        started = time.time()
        try:
            return original(*args, **kwargs)
        finally:
            launch["seconds"] = time.time() - started

    pyspark.context.launch_gateway = timed_launch

    def mark(name: str, since: float) -> float:
        now = time.time()
        marks.append((name, round(now - since, 3)))
        return now

    t = time.time()
    config = load_config(config_path)
    tables = list(load_project_tables(config).values())
    t = mark("load configuration and definitions", t)
    spark = get_spark(config)
    session = time.time() - t
    marks.append(("JVM launch + Ivy resolution (launch_gateway)", round(launch["seconds"], 3)))
    marks.append(("SparkContext + session (rest of get_spark)", round(session - launch["seconds"], 3)))
    t = time.time()
    table = tables[0]
    df = compute_table(spark, config, table)
    t = mark("read source, transform, validate", t)
    path = config.table_path(table.name)
    write_feature_table(spark, table, path, df)
    t = mark("first Delta write (write_feature_table: create)", t)
    write_feature_table(spark, table, path, df)
    t = mark("second Delta write (write_feature_table: MERGE, as a rerun does)", t)
    register_tables(config, tables)
    t = mark("Feast apply", t)
    spark.stop()
    t = mark("session stop", t)
    return {"marks": marks, "in_process_seconds": round(time.time() - process_start, 3),
            "imports_done_at": round(t0 - process_start, 3)}


IVY_RESOLVE = re.compile(r"resolve (\d+)ms :: artifacts dl (\d+)ms")


def run_profile(config: Path) -> dict[str, Any]:
    """Run :func:`profile_child` in a fresh process; return its phases (+ Ivy's own figures)."""
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "benchmarks.startup", "--profile-child", str(config)],
                          capture_output=True, text=True, env=_child_env(), cwd=Path(__file__).resolve().parent.parent)
    total = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(f"profiling child failed:\n{proc.stderr[-3000:]}")
    data = json.loads(proc.stdout.strip().splitlines()[-1])
    ivy = IVY_RESOLVE.search(proc.stderr)
    data["ivy_resolve_ms"] = int(ivy.group(1)) if ivy else None
    data["ivy_artifacts_dl_ms"] = int(ivy.group(2)) if ivy else None
    data["wall_seconds"] = round(total, 3)
    data["marks"].append(("interpreter exit (after session stop)", round(total - data["in_process_seconds"], 3)))
    return data


def notes(median_seconds: float, profile: dict[str, Any]) -> list[str]:
    """Say whether the target was met and which phases the time went to (largest first)."""
    phases = sorted(profile["marks"], key=lambda m: -m[1])
    top = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in phases[:4])
    verdict = (f"target met ({median_seconds} s <= {TARGET_SECONDS:g} s)" if median_seconds <= TARGET_SECONDS else
               f"target missed by {median_seconds - TARGET_SECONDS:.1f} s ({median_seconds} s vs {TARGET_SECONDS:g} s)")
    return [f"{verdict}; largest phases of the profiled build: {top}.",
            f"Ivy resolved spark.jars.packages from its local cache in {profile.get('ivy_resolve_ms')} ms "
            f"(+{profile.get('ivy_artifacts_dl_ms')} ms artifacts); it runs inside the JVM launch on every start."]


def build_parser() -> argparse.ArgumentParser:
    """Return the benchmark's argument parser."""
    parser = base_parser("benchmarks.startup", __doc__.splitlines()[0])
    parser.set_defaults(repeat=3)
    parser.add_argument("--no-rerun", action="store_true", help="skip the rerun builds (MERGE into the table)")
    parser.add_argument("--profile-child", metavar="CONFIG", help=argparse.SUPPRESS)
    return parser


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Time fresh builds and a profiled build; return the results."""
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="bench_startup_"))
    result = result_header(NAME, args, {"table_rows": 3, "master": "local[2]", "builds_per_case": args.repeat})
    try:
        config = prepare(workdir)
        first, rerun = [], []
        for _ in range(args.repeat):
            clean(workdir)
            first.append(time_build(config))
            if not args.no_rerun:
                rerun.append(time_build(config))
        clean(workdir)
        profile = run_profile(config)
    finally:
        if not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    ok = all(r["exit_code"] == 0 for r in first + rerun)
    med_first = statistics.median(r["seconds"] for r in first)
    med_rerun = statistics.median(r["seconds"] for r in rerun) if rerun else None
    measurements = [
        {"name": "featurelake build, empty warehouse (create + MERGE + Feast apply)", "rows": 3,
         "seconds": med_first, "all_seconds": [r["seconds"] for r in first],
         "load_before": first[0]["load_before"]},
    ]
    if rerun:
        measurements.append({"name": "featurelake build, rerun (MERGE into existing table)", "rows": 3,
                             "seconds": med_rerun, "all_seconds": [r["seconds"] for r in rerun],
                             "load_before": rerun[0]["load_before"]})
    phases = [{"phase": name, "seconds": seconds,
               "share": f"{seconds / profile['wall_seconds']:.0%}"} for name, seconds in profile["marks"]]
    phases.append({"phase": "total (profiled process, wall)", "seconds": profile["wall_seconds"], "share": "100%"})
    result.update(
        measurements=measurements,
        equal=ok,
        ratios=[target_row("build wall time, empty warehouse (s)", med_first, f"<= {TARGET_SECONDS:g}",
                           med_first <= TARGET_SECONDS),
                target_row("build wall time, rerun (s)", med_rerun, f"<= {TARGET_SECONDS:g}",
                           None if med_rerun is None else med_rerun <= TARGET_SECONDS)],
        tables={"Where the time goes (one profiled fresh process)": phases},
        profile=profile,
        notes=notes(med_first, profile),
        summary=[f"`featurelake build` of one tiny table: {med_first} s on an empty warehouse"
                 + (f", {med_rerun} s on a rerun" if rerun else "")
                 + f" (target <= {TARGET_SECONDS:g} s); Ivy resolution {profile['ivy_resolve_ms']} ms "
                 f"(artifacts {profile['ivy_artifacts_dl_ms']} ms)."],
    )
    return result


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit code."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--profile-child"]:
        logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
        print(json.dumps(profile_child(argv[1])))
        return 0
    return main_for(NAME, build_parser(), run, argv)


if __name__ == "__main__":
    sys.exit(main())
