"""Benchmark: the commands people run at the terminal, on the demo's workspace.

Each command runs as a user runs it: ``python -m jobs.cli --config DEMO/featurelake.yaml ...``
in a fresh process, wall time from start to exit. After the class-data archive exists
(``featurelake warmup``) and one untimed run of each command, every command runs ``--repeat``
times (default 5) in rotating order and the median is kept:

- ``tables list``, ``tables describe``, ``tables history``, ``models events`` (target <= 1.5 s each)
  and ``report`` (<= 3 s): with delta-rs (the default) and, as the before figure, with the
  Spark reader (``FEATURELAKE_METADATA_READER=spark``: what every one of them did before);
- ``predict`` of the demo's 500 entities (<= 15 s) and ``build`` of the demo's tables on a rerun (<= 12 s).

Then one ``predict`` runs in a profiling process whose steps are wrapped with time marks
(imports, Spark session, model resolution, feature lookup, scoring + Delta write split into
Spark stages, the Python workers' own imports) to show where its seconds go.

    python -m benchmarks.terminal                        # runs the demo into a scratch folder first
    python -m benchmarks.terminal --demo-workdir ./demo-run --repeat 5
"""

from __future__ import annotations

import argparse
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

from benchmarks.common import base_parser, load_average, main_for, ratio, result_header, target_row

logger = logging.getLogger(__name__)

NAME = "terminal"
REPO = Path(__file__).resolve().parents[1]
ENTITIES = "raw/scoring_entities.parquet"

# (name, arguments, target seconds, has a Spark-reader "before")
COMMANDS: list[tuple[str, list[str], float, bool]] = [
    ("tables list", ["tables", "list"], 1.5, True),
    ("tables describe", ["tables", "describe", "customer_profile"], 1.5, True),
    ("tables history", ["tables", "history", "customer_weekly_spend"], 1.5, True),
    ("models events", ["models", "events"], 1.5, True),
    ("report", ["report", "--out", "{scratch}/report"], 3.0, True),
    ("predict 500 entities", ["predict", "--input", "{demo}/" + ENTITIES, "--batch-id", "bench"], 15.0, False),
    ("build rerun", ["build"], 12.0, False),
]


def _env(reader: str) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "FEATURELAKE_METADATA_READER": reader}
    env.pop("PYSPARK_GATEWAY_PORT", None)
    return env


def run_command(config: Path, args: list[str], reader: str = "auto") -> tuple[float, float]:
    """Run ``featurelake --config CONFIG ARGS`` in a fresh process (exit 0 required).

    Returns its wall time and the CPU time of the process and every process under it (the
    driver JVM, Python workers), sampled every 0.1 s while they run (a process's last 0.1 s
    can be missed). On a loaded machine the CPU time says what the command costs, the wall
    time what a user waits.
    """
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "jobs.cli", "--config", str(config), *args], env=_env(reader),
                               stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    cpu_by_process: dict[int, float] = {}
    watched = psutil.Process(process.pid)
    while process.poll() is None:
        try:
            for proc in [watched, *watched.children(recursive=True)]:
                with proc.oneshot():
                    times = proc.cpu_times()
                cpu_by_process[proc.pid] = times.user + times.system
        except psutil.Error:
            pass
        time.sleep(0.1)
    _, stderr = process.communicate()
    seconds = time.perf_counter() - started
    if process.returncode != 0:
        raise RuntimeError(f"featurelake {' '.join(args)} failed ({process.returncode}): {stderr[-2000:]}")
    return seconds, sum(cpu_by_process.values())


def ensure_demo(workdir: Path | None, scratch: Path) -> Path:
    """Return the demo's configuration file, running ``featurelake demo`` first when needed."""
    demo = workdir or scratch / "demo"
    config = demo / "featurelake.yaml"
    if not config.is_file():
        logger.info("running featurelake demo in %s (a few minutes)", demo)
        done = subprocess.run([sys.executable, "-m", "jobs.cli", "demo", "--workdir", str(demo)], env=_env("auto"),
                              stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"featurelake demo failed: {done.stderr[-2000:]}")
    return config


def ensure_warmup() -> bool:
    """Write the class-data archive unless it exists (``featurelake warmup``); True when it ran."""
    from featurestore.runtime.class_data_archive import existing_archive

    if existing_archive() is not None:
        return False
    subprocess.run([sys.executable, "-m", "jobs.cli", "warmup"], env=_env("auto"), check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return True


def measure_commands(config: Path, scratch: Path, repeat: int, before_repeat: int) -> list[dict[str, Any]]:
    """One untimed run of every case, then timed rounds in rotating order; the figures of each case.

    The delta-rs (default) cases run ``repeat`` times, their Spark-reader "before" ``before_repeat`` times.
    """
    demo = config.parent
    cases = []
    for name, args, target, has_before in COMMANDS:
        filled = [a.replace("{scratch}", str(scratch)).replace("{demo}", str(demo)) for a in args]
        cases.append((name, filled, target, "auto", repeat))
        if has_before and before_repeat > 0:
            cases.append((f"{name} (Spark reader)", filled, target, "spark", before_repeat))
    times: dict[str, list[float]] = {name: [] for name, *_ in cases}
    cpu: dict[str, list[float]] = {name: [] for name, *_ in cases}
    first: dict[str, float] = {}
    loads: dict[str, list[float]] = {}
    for round_number in range(max(repeat, before_repeat) + 1):
        shift = round_number % len(cases)
        for name, args, _, reader, runs in cases[shift:] + cases[:shift]:
            if round_number > runs:
                continue
            if round_number and name not in loads:
                loads[name] = load_average()
            seconds, cpu_seconds = run_command(config, args, reader)
            if round_number == 0:
                first[name] = seconds
            else:
                times[name].append(seconds)
                cpu[name].append(cpu_seconds)
            logger.info("%s: %.2f s, %.2f s CPU (round %d)", name, seconds, cpu_seconds, round_number)
    return [{"name": name, "rows": 500 if name.startswith("predict") else 1,
             "seconds": round(statistics.median(times[name]), 3), "all_seconds": [round(t, 3) for t in times[name]],
             "cpu_seconds": round(statistics.median(cpu[name]), 3),
             "first_run_seconds": round(first[name], 3), "target_seconds": target, "reader": reader,
             "load_before": loads.get(name)} for name, _, target, reader, _ in cases]


PROFILE_CHILD = r"""
import json, sys, time
began = time.perf_counter()
marks = {}
import jobs.batch_inference, inference.batch as batch
from featurestore.runtime import spark_session
marks["imports"] = time.perf_counter() - began

def timed(module, name):
    original = getattr(module, name)
    def call(*args, **kwargs):
        started = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            marks[name] = marks.get(name, 0.0) + time.perf_counter() - started
    setattr(module, name, call)

for module, name in ((spark_session, "get_spark"), (batch, "resolve_model"), (batch, "read_input"),
                     (batch, "lookup_features"), (batch, "score"), (batch, "write_batch")):
    timed(module, name)
code = jobs.batch_inference.main(sys.argv[2:])
marks["total_in_process"] = time.perf_counter() - began
json.dump({"code": code, "marks": {k: round(v, 3) for k, v in marks.items()}}, open(sys.argv[1], "w"))
"""

# What the scoring worker daemon (inference.worker_daemon) imports once instead of every worker.
WORKER_IMPORTS = ("import time; from inference.worker_daemon import import_scoring_stack; t = time.perf_counter(); "
                  "import_scoring_stack(); print(time.perf_counter() - t)")


def profiling_config(config: Path, event_log: Path) -> Path:
    """A copy of the demo's configuration (next to it: its paths are relative) with Spark's event log on."""
    import yaml

    event_log.mkdir(parents=True, exist_ok=True)
    data = yaml.safe_load(config.read_text(encoding="utf-8"))
    data["spark"]["conf"] = {**(data["spark"].get("conf") or {}), "spark.eventLog.enabled": "true",
                             "spark.eventLog.dir": event_log.as_uri(), "spark.eventLog.compress": "false"}
    target = config.parent / "featurelake-profile.yaml"
    target.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return target


def stage_times(event_log: Path) -> list[dict[str, Any]]:
    """Every completed stage of the event log: name, tasks, wall seconds and summed task run time."""
    task_seconds: dict[int, float] = {}
    stages = []
    # Spark 4 writes a folder per application: events_N_* files, an empty appstatus_* marker, .crc files.
    for log in sorted(f for f in event_log.rglob("*") if f.is_file() and not f.name.startswith((".", "appstatus"))):
        for line in log.read_text(encoding="utf-8").splitlines():
            event = json.loads(line)
            if event["Event"] == "SparkListenerTaskEnd":
                run_ms = (event.get("Task Metrics") or {}).get("Executor Run Time", 0)
                task_seconds[event["Stage ID"]] = task_seconds.get(event["Stage ID"], 0.0) + run_ms / 1000
            elif event["Event"] == "SparkListenerStageCompleted":
                info = event["Stage Info"]
                stages.append({"stage": info["Stage ID"], "name": info["Stage Name"].split(" at ")[0],
                               "tasks": info["Number of Tasks"],
                               "seconds": round((info["Completion Time"] - info["Submission Time"]) / 1000, 3)})
    for stage in stages:
        stage["task_run_seconds"] = round(task_seconds.get(stage["stage"], 0.0), 3)
    return sorted(stages, key=lambda s: s["stage"])


def profile_predict(config: Path, scratch: Path) -> dict[str, Any]:
    """Run one ``predict`` in a profiling process; return its phases, Spark stages and process wall time."""
    out, event_log = scratch / "profile.json", scratch / "event-log"
    profile_config = profiling_config(config, event_log)
    args = ["--config", str(profile_config), "--input", str(config.parent / ENTITIES), "--batch-id", "bench"]
    try:
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-c", PROFILE_CHILD, str(out), *args], env=_env("auto"),
                              stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        wall = time.perf_counter() - started
    finally:
        profile_config.unlink()
    if done.returncode != 0:
        raise RuntimeError(f"profiled predict failed: {done.stderr[-2000:]}")
    profile = json.loads(out.read_text())
    profile["process_wall_seconds"] = round(wall, 3)
    profile["stages"] = stage_times(event_log)
    imports = subprocess.run([sys.executable, "-c", WORKER_IMPORTS], capture_output=True, text=True, check=True,
                             env=_env("auto"))
    profile["python_worker_imports_seconds"] = round(float(imports.stdout.strip()), 3)
    return profile


def profile_rows(profile: dict[str, Any]) -> list[dict[str, Any]]:
    """The profile as table rows: one per phase (in the order they ran)."""
    described = {
        "imports": "Python start-up and imports of the job (pyspark, mlflow, pandas...)",
        "get_spark": "Spark session: JVM launch with the class-data archive",
        "resolve_model": "model reference resolved in the MLflow registry",
        "read_input": "entities read (parquet)",
        "lookup_features": "feature lookup planned (latest values, Delta versions)",
        "score": "spark_udf built (the model is loaded in the workers)",
        "write_batch": "scoring + Delta write of the predictions (the Spark stages)",
        "total_in_process": "whole job in the process (after interpreter start)",
    }
    return [{"phase": k, "seconds": v, "what": described.get(k, "")} for k, v in profile["marks"].items()]


def build_parser() -> argparse.ArgumentParser:
    """Return the benchmark's argument parser."""
    parser = base_parser("python -m benchmarks.terminal", "Time the terminal commands on the demo's workspace.")
    parser.set_defaults(repeat=5)
    parser.add_argument("--demo-workdir", help="an existing demo workspace (default: run the demo into --workdir)")
    parser.add_argument("--before-repeat", type=int, default=2,
                        help="timed runs of each metadata command with the Spark reader, the before figure "
                             "(default 2; 0 skips them)")
    parser.add_argument("--no-profile", action="store_true", help="skip the profiled predict")
    return parser


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Run the benchmark; return its result."""
    scratch = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="featurelake-terminal-"))
    try:
        config = ensure_demo(Path(args.demo_workdir).resolve() if args.demo_workdir else None, scratch)
        header = result_header(NAME, args, {"demo": str(config.parent), "warmup_ran": ensure_warmup(),
                                            "before_repeat": args.before_repeat,
                                            "processes": "fresh python -m jobs.cli per run"})
        measurements = measure_commands(config, scratch, args.repeat, args.before_repeat)
        profile = None if args.no_profile else profile_predict(config, scratch)
    finally:
        if not args.workdir:
            shutil.rmtree(scratch, ignore_errors=True)
    by_name = {m["name"]: m for m in measurements}
    ratios = []
    for name, _, target, has_before in COMMANDS:
        seconds = by_name[name]["seconds"]
        ratios.append(target_row(f"{name}: seconds / target {target:g} s", ratio(seconds, target), "<= 1",
                                 seconds <= target))
        before = by_name.get(f"{name} (Spark reader)")
        if before:
            ratios.append(target_row(f"{name}: Spark reader / delta-rs, wall", ratio(before["seconds"], seconds),
                                     "-", None))
            ratios.append(target_row(f"{name}: Spark reader / delta-rs, CPU",
                                     ratio(before["cpu_seconds"], by_name[name]["cpu_seconds"]), "-", None))
    result = {**header, "measurements": measurements, "ratios": ratios, "summary": [
        f"{m['name']}: {m['seconds']:.2f} s wall, {m['cpu_seconds']:.2f} s CPU (target {m['target_seconds']:g} s "
        f"wall: {'met' if m['seconds'] <= m['target_seconds'] else 'NOT met'}), load {m['load_before']}"
        for m in measurements]}
    if profile is not None:
        result["profile_predict"] = profile
        result["tables"] = {"Where predict's seconds go (one profiled run)": profile_rows(profile),
                            "Spark stages of the profiled predict": profile["stages"]}
        result["notes"] = [f"profiled predict: {profile['process_wall_seconds']:.1f} s wall; the scoring stack "
                           f"(pandas, pyarrow, sklearn, mlflow.pyfunc, skops), imported once by the worker daemon "
                           f"instead of by every Python worker, takes {profile['python_worker_imports_seconds']:.1f} s"]
    return result


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    return main_for(NAME, build_parser(), run, argv)


if __name__ == "__main__":
    sys.exit(main())
