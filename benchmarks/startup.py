"""Benchmark: start-up, the smallest end-to-end job (`featurelake build` of one tiny table).

Two measurements, each in fresh processes, local mode:

1. wall time of ``featurelake build --config X`` from process start to exit (the target):
   before ``featurelake warmup`` (or the first ``featurelake demo``) has written the JVM
   class-data archive (a first run on a new machine), the warmup itself, then with the archive
   on an empty warehouse (creates the table), on a rerun (upsert into the existing table) and
   with ``spark.quick_start: never`` (what the quick-start options are worth). Each case gets
   its own cache folder (``FEATURELAKE_CACHE_DIR``), so the user's own archive is never used;
2. where the time goes: the build job's code run in a fresh profiling process
   (``--profile-child``) whose own functions are wrapped with time marks, once on an empty
   warehouse and once on a rerun. Each phase reports wall seconds, driver-JVM CPU seconds
   (less sensitive to other load on the machine than wall time) and the number of Spark jobs:
   Python start and imports, JVM launch with Ivy resolution of ``spark.jars.packages`` (Ivy's
   own "resolve N ms" is parsed from its report), the rest of the session start, reading the
   source + transformation + validation, the wait for the Feast registry check (which runs
   in a thread during the computation), the Delta write, Feast apply, session stop and exit;
   the Delta write is split further into ``write_feature_table``'s own steps.

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

from benchmarks.common import WRITE_STEPS, base_parser, load_average, main_for, result_header, target_row, timed_steps
from featurestore.runtime.class_data_archive import write_tiny_project

logger = logging.getLogger(__name__)

NAME = "startup"
TARGET_SECONDS = 15.0

QUICK_START_OFF_CONFIG = "featurelake-quick-start-off.yaml"  # the same, with spark.quick_start: never


def prepare(workdir: Path) -> Path:
    """Write the tiny project (the same build the warmup trains on); return the configuration path."""
    config = write_tiny_project(workdir)
    (workdir / QUICK_START_OFF_CONFIG).write_text(
        config.read_text(encoding="utf-8") + "  quick_start: never\n", encoding="utf-8")
    return config


def clean(workdir: Path) -> None:
    """Remove the warehouse and Feast repository (next build starts from nothing)."""
    for name in ("warehouse", "feast_repo"):
        shutil.rmtree(workdir / name, ignore_errors=True)


def _child_env(cache: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYSPARK_GATEWAY_PORT", None)
    env["FEATURELAKE_CACHE_DIR"] = str(cache)
    return env


def time_command(args: list[str], cache: Path, cwd: Path) -> dict[str, Any]:
    """Run ``featurelake ARGS`` in a fresh process; return its wall time and exit code."""
    load = load_average()
    started = time.perf_counter()
    proc = subprocess.run([shutil.which("featurelake") or "featurelake", *args],
                          capture_output=True, text=True, env=_child_env(cache), cwd=cwd)
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        # A failed command's wall time is not a start-up figure: stop rather than report it.
        raise RuntimeError(f"featurelake {' '.join(args)} exited {proc.returncode}:\n{proc.stderr[-3000:]}")
    return {"seconds": round(seconds, 2), "exit_code": proc.returncode, "load_before": load}


def time_build(config: Path, cache: Path) -> dict[str, Any]:
    """Run ``featurelake build`` in a fresh process with the cache folder ``cache``; return its wall time."""
    return time_command(["build", "--config", str(config)], cache, config.parent)


# ----------------------------------------------------------------- profiling child
class _Phases:
    """Timestamps of the build's phases: wall seconds, JVM CPU seconds and Spark jobs run in each."""

    def __init__(self) -> None:
        self.marks: list[dict[str, Any]] = []
        self.spark: Any = None
        self.jvm: Any = None  # psutil.Process of the driver JVM once it runs
        self._last = (time.time(), 0.0, 0)

    def attach(self, spark: Any) -> None:
        import psutil

        self.spark = spark
        self.jvm = psutil.Process(int(spark._jvm.java.lang.ProcessHandle.current().pid()))

    def _jvm_cpu(self) -> float:
        if self.jvm is None:
            return 0.0
        times = self.jvm.cpu_times()
        return times.user + times.system + times.children_user + times.children_system

    def _jobs(self) -> int:
        if self.spark is None:  # not started yet, or stopped: no new jobs
            return self._last[2]
        return len(self.spark.sparkContext.statusTracker().getJobIdsForGroup())

    def mark(self, name: str, wall: float | None = None) -> None:
        """Close the phase ``name`` (it began at the previous mark)."""
        now, cpu, jobs = time.time(), self._jvm_cpu(), self._jobs()
        since, cpu_before, jobs_before = self._last
        self.marks.append({"phase": name, "seconds": round(now - since if wall is None else wall, 3),
                           "jvm_cpu_seconds": round(cpu - cpu_before, 2), "spark_jobs": jobs - jobs_before})
        self._last = (now, cpu, jobs)


def profile_child(config_path: str) -> dict[str, Any]:
    """Run the build in this (fresh) process as ``featurelake build`` does; time each phase.

    The build's own functions are wrapped (not copied), so the profile follows the product's
    code path: the Feast registry check runs in its thread while Spark computes the table.
    """
    import psutil

    process_start = psutil.Process().create_time()
    import pyspark.context

    import featurestore.build as build
    from featurestore import delta_tables
    from featurestore.core.config import load_config
    from featurestore.definitions import select_tables
    from featurestore.runtime.spark_session import get_spark

    phases = _Phases()
    phases.mark("python start and imports", wall=time.time() - process_start)
    launch = {"seconds": 0.0}
    original_launch = pyspark.context.launch_gateway

    def timed_launch(*args: Any, **kwargs: Any) -> Any:
        started = time.time()
        try:
            return original_launch(*args, **kwargs)
        finally:
            launch["seconds"] = time.time() - started

    pyspark.context.launch_gateway = timed_launch
    background: dict[str, float] = {}

    def wrap(name: str, phase: str | None) -> None:
        original = getattr(build, name)

        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.time()
            try:
                return original(*args, **kwargs)
            finally:
                if phase is None:
                    background[name] = round(time.time() - started, 3)
                else:
                    phases.mark(phase)

        setattr(build, name, timed)

    def before_write(*args: Any, **kwargs: Any) -> Any:
        phases.mark("wait for the Feast registry check (after the computation)")
        return write(*args, **kwargs)

    write = build.write_feature_table
    build.write_feature_table = before_write
    wrap("check_registry", None)  # runs in its own thread: timed on its own, not a phase
    wrap("compute_table", "read source, transform, validate")
    wrap("write_feature_table", "Delta write (write_feature_table)")
    wrap("register_tables", "Feast apply")

    config = load_config(config_path)
    tables = select_tables(build.load_project_tables(config), None)
    small = build.sources_are_small(config, tables)
    phases.mark("load configuration and definitions")
    spark = get_spark(config, small_input=small)
    phases.attach(spark)
    session_seconds = time.time() - phases._last[0]
    phases.marks.append({"phase": "JVM launch + Ivy resolution (launch_gateway)",
                         "seconds": round(launch["seconds"], 3), "jvm_cpu_seconds": None, "spark_jobs": 0})
    phases.mark("SparkContext + session (rest of get_spark)", wall=session_seconds - launch["seconds"])
    with timed_steps(delta_tables, WRITE_STEPS) as write_steps:
        results = build.build_tables(spark, config, tables)
    spark.stop()
    phases.spark = None
    phases.mark("session stop")
    return {"marks": phases.marks, "in_process_seconds": round(time.time() - process_start, 3),
            "created": [r.write.created for r in results], "write_steps": write_steps,
            "background_feast_check_seconds": background.get("check_registry")}


IVY_RESOLVE = re.compile(r"resolve (\d+)ms :: artifacts dl (\d+)ms")


def run_profile(config: Path, cache: Path) -> dict[str, Any]:
    """Run :func:`profile_child` in a fresh process; return its phases (+ Ivy's own figures)."""
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "benchmarks.startup", "--profile-child", str(config)],
                          capture_output=True, text=True, env=_child_env(cache),
                          cwd=Path(__file__).resolve().parent.parent)
    total = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(f"profiling child failed:\n{proc.stderr[-3000:]}")
    data = json.loads(proc.stdout.strip().splitlines()[-1])
    ivy = IVY_RESOLVE.search(proc.stderr)
    data["ivy_resolve_ms"] = int(ivy.group(1)) if ivy else None
    data["ivy_artifacts_dl_ms"] = int(ivy.group(2)) if ivy else None
    data["wall_seconds"] = round(total, 3)
    data["marks"].append({"phase": "interpreter exit (after session stop)",
                          "seconds": round(total - data["in_process_seconds"], 3), "jvm_cpu_seconds": None,
                          "spark_jobs": 0})
    return data


def phase_rows(profile: dict[str, Any]) -> list[dict[str, Any]]:
    """Return the profile's phases as table rows, with their share of the process wall time."""
    rows = [{**m, "jvm_cpu_seconds": "" if m["jvm_cpu_seconds"] is None else m["jvm_cpu_seconds"],
             "share": f"{m['seconds'] / profile['wall_seconds']:.0%}"} for m in profile["marks"]]
    rows.append({"phase": "(in a thread, overlapping the above) Feast import + registry check",
                 "seconds": profile.get("background_feast_check_seconds"), "jvm_cpu_seconds": "",
                 "spark_jobs": 0, "share": ""})
    rows.append({"phase": "total (profiled process, wall)", "seconds": profile["wall_seconds"],
                 "jvm_cpu_seconds": round(sum(m["jvm_cpu_seconds"] or 0 for m in profile["marks"]), 2),
                 "spark_jobs": sum(m["spark_jobs"] for m in profile["marks"]), "share": "100%"})
    return rows


def notes(median_seconds: float, profile: dict[str, Any], rerun_seconds: float | None = None,
          profile_rerun: dict[str, Any] | None = None) -> list[str]:
    """Say whether the target was met and which phases the time went to (largest first), for the
    build on an empty warehouse and, when timed, for the rerun."""
    lines = [_verdict("build on an empty warehouse", median_seconds, profile)]
    if rerun_seconds is not None and profile_rerun is not None:
        lines.append(_verdict("rerun", rerun_seconds, profile_rerun))
    return lines + [_ivy_note(profile)]


def _verdict(case: str, median_seconds: float, profile: dict[str, Any]) -> str:
    phases = sorted(profile["marks"], key=lambda m: -m["seconds"])
    top = ", ".join(f"{m['phase']} {m['seconds']:.1f} s ({m['spark_jobs']} Spark jobs)" for m in phases[:4])
    steps = ", ".join(f"{s['step']} {s['seconds']:.1f} s" for s in profile["write_steps"])
    verdict = (f"target met ({median_seconds} s <= {TARGET_SECONDS:g} s)" if median_seconds <= TARGET_SECONDS else
               f"target missed by {median_seconds - TARGET_SECONDS:.1f} s ({median_seconds} s vs {TARGET_SECONDS:g} s)")
    return f"{case}: {verdict}; largest phases of the profiled run: {top}; the Delta write's steps: {steps}."


def _ivy_note(profile: dict[str, Any]) -> str:
    if profile.get("ivy_resolve_ms") is None:
        return ("Ivy did not run: the session was given the jars an earlier resolution recorded "
                "(featurestore.runtime.resolved_jars) as spark.jars.")
    return (f"Ivy resolved spark.jars.packages from its local cache in {profile['ivy_resolve_ms']} ms "
            f"(+{profile.get('ivy_artifacts_dl_ms')} ms artifacts), inside the JVM launch.")


def build_parser() -> argparse.ArgumentParser:
    """Return the benchmark's argument parser."""
    parser = base_parser("benchmarks.startup", __doc__.splitlines()[0])
    parser.set_defaults(repeat=3)
    parser.add_argument("--no-rerun", action="store_true", help="skip the rerun builds (upsert into the table)")
    parser.add_argument("--profile-child", metavar="CONFIG", help=argparse.SUPPRESS)
    return parser


def _case(name: str, runs: list[dict[str, Any]]) -> dict[str, Any]:
    return {"name": name, "rows": 3, "seconds": statistics.median(r["seconds"] for r in runs),
            "all_seconds": [r["seconds"] for r in runs], "load_before": runs[0]["load_before"]}


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Time fresh builds (before and after the warmup) and profiled builds; return the results."""
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="bench_startup_"))
    result = result_header(NAME, args, {"table_rows": 3, "master": "local[2]", "builds_per_case": args.repeat})
    no_archive, with_archive = workdir / "cache-empty", workdir / "cache"
    try:
        config = prepare(workdir)
        cold = []
        for _ in range(args.repeat):
            clean(workdir)
            cold.append(time_build(config, no_archive))
        warmup = time_command(["warmup"], with_archive, workdir)
        first, rerun, quick_off = [], [], []
        for _ in range(args.repeat):
            clean(workdir)
            first.append(time_build(config, with_archive))
            if not args.no_rerun:
                rerun.append(time_build(config, with_archive))
        for _ in range(args.repeat):
            clean(workdir)
            quick_off.append(time_build(workdir / QUICK_START_OFF_CONFIG, with_archive))
        clean(workdir)
        profile = run_profile(config, with_archive)  # empty warehouse: creates the table
        profile_rerun = None if args.no_rerun else run_profile(config, with_archive)  # upsert into it
    finally:
        if not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    measurements = [
        _case("featurelake build, empty warehouse, before warmup (no class-data archive)", cold),
        {**_case("featurelake warmup (once per machine: writes the class-data archive)", [warmup]), "rows": 0},
        _case("featurelake build, empty warehouse (create + Feast apply), after warmup", first),
    ]
    if rerun:
        measurements.append(_case("featurelake build, rerun (upsert into the existing table), after warmup", rerun))
    measurements.append(_case("featurelake build, empty warehouse, after warmup, spark.quick_start: never",
                              quick_off))
    by_name = {m["name"]: m["seconds"] for m in measurements}
    med_first, med_cold = measurements[2]["seconds"], measurements[0]["seconds"]
    med_rerun = measurements[3]["seconds"] if rerun else None
    tables = {"Where the time goes: empty warehouse, after warmup (one profiled fresh process)": phase_rows(profile),
              "The Delta write's steps: empty warehouse": profile["write_steps"]}
    if profile_rerun is not None:
        tables["Where the time goes: rerun, upsert, after warmup (one profiled fresh process)"] = phase_rows(profile_rerun)
        tables["The Delta write's steps: rerun"] = profile_rerun["write_steps"]
    target = f"<= {TARGET_SECONDS:g}"
    result.update(
        measurements=measurements,
        ratios=[target_row("build wall time, empty warehouse, after warmup (s)", med_first, target,
                           med_first <= TARGET_SECONDS),
                target_row("build wall time, rerun, after warmup (s)", med_rerun, target,
                           None if med_rerun is None else med_rerun <= TARGET_SECONDS),
                target_row("build wall time, empty warehouse, before warmup (s)", med_cold, target,
                           med_cold <= TARGET_SECONDS)],
        tables=tables,
        profile=profile,
        profile_rerun=profile_rerun,
        notes=notes(med_first, profile, med_rerun, profile_rerun),
        summary=[f"`featurelake build` of one tiny table: {med_first} s on an empty warehouse"
                 + (f", {med_rerun} s on a rerun" if rerun else "")
                 + f" after `featurelake warmup` ({warmup['seconds']} s, once); {med_cold} s before it; "
                 + f"{by_name[measurements[-1]['name']]} s with spark.quick_start: never"
                 + f" (target <= {TARGET_SECONDS:g} s). " + _ivy_note(profile)],
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
