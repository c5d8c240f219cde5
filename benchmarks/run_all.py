"""Run every benchmark (each in a fresh process) and write the summary and scaling tables.

    python -m benchmarks.run_all                    # every benchmark at its default size
    python -m benchmarks.run_all --scales 1 10      # + scaling: the same at 10x the data
    python -m benchmarks.run_all --only training_set table_writes --scales 0.3 1 3

Each benchmark writes ``benchmarks/results/<name>.json|md`` (the first scale) and
``<name>_x<scale>.json|md`` (other scales); this script then writes
``benchmarks/results/summary.md|json`` with the headline ratios, the load average around
each run and, with several scales, how time, throughput and memory grow with the data.
The batch-scoring benchmark (``benchmarks/batch_scoring.py``) is run when present.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from benchmarks.common import RESULTS_DIR, load_average, machine, table_markdown, versions

logger = logging.getLogger("benchmarks.run_all")

BENCHMARKS = ("startup", "table_writes", "training_set", "batch_scoring", "serving")
UNSCALED = {"startup", "serving"}  # start-up has no data size; serving runs the demo's model
ROOT = Path(__file__).resolve().parent.parent


def available(name: str) -> bool:
    """True when the benchmark's script exists (batch_scoring is written in another area)."""
    return (ROOT / "benchmarks" / f"{name}.py").exists()


def scale_tag(scale: float) -> str:
    """Return ``1``, ``10``, ``0.3`` for a scale (file-name friendly)."""
    return f"{scale:g}"


def result_prefix(name: str, scale: float, first: float) -> Path:
    """Where one run's results go (the first scale gets the plain name)."""
    return RESULTS_DIR / (name if scale == first else f"{name}_x{scale_tag(scale)}")


def run_one(name: str, scale: float, prefix: Path, extra: list[str], timeout: float) -> dict[str, Any]:
    """Run one benchmark in a fresh process; return its result (or the failure)."""
    command = [sys.executable, "-m", f"benchmarks.{name}", "--scale", scale_tag(scale), "--out", str(prefix), *extra]
    logger.info("running %s", " ".join(command[1:]))
    load = load_average()
    started = time.perf_counter()
    # Own process group, so a timeout stops the benchmark's JVM and Python workers too.
    proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        _, stderr = proc.communicate(timeout=timeout)
        code: int | str = proc.returncode
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGTERM)
        _, stderr = proc.communicate()
        code = "timeout"
    seconds = round(time.perf_counter() - started, 1)
    json_path = prefix.parent / (prefix.name + ".json")
    outcome: dict[str, Any] = {"benchmark": name, "scale": scale, "exit_code": code, "process_seconds": seconds,
                               "load_before": load, "load_after": load_average(), "results": str(json_path)}
    if code == 0 or (code == 1 and json_path.exists()):
        outcome["result"] = json.loads(json_path.read_text(encoding="utf-8"))
    else:
        outcome["error"] = stderr[-2000:]
        logger.error("%s at scale %s failed (%s):\n%s", name, scale, code, stderr[-2000:])
    logger.info("%s at scale %s: exit %s in %.0f s (load %s)", name, scale, code, seconds, load)
    return outcome


def earlier_results(ran: list[str]) -> list[dict[str, Any]]:
    """Results files of benchmarks not run now (``--only``), at every scale, so the summary still lists them."""
    return [{**o, "exit_code": "earlier run" if o["exit_code"] == "0" else "earlier run, check failed"}
            for o in collected_results() if o["benchmark"] not in ran]


def collected_results() -> list[dict[str, Any]]:
    """Every results file under ``benchmarks/results`` (for ``--summarize``), by benchmark and scale."""
    found = []
    for path in sorted(RESULTS_DIR.glob("*.json")):
        if path.stem == "summary":
            continue
        result = json.loads(path.read_text(encoding="utf-8"))
        if "benchmark" not in result:
            continue
        found.append({"benchmark": result["benchmark"], "scale": result.get("parameters", {}).get("scale", 1.0),
                      "exit_code": "0" if result.get("equal", True) is not False else "check failed",
                      "process_seconds": "", "load_before": result.get("load_at_start"),
                      "load_after": result.get("load_at_end"), "results": str(path), "result": result})
    return sorted(found, key=lambda o: (BENCHMARKS.index(o["benchmark"]) if o["benchmark"] in BENCHMARKS else 99,
                                        o["scale"]))


def headline_rows(outcomes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per ratio/target of every run."""
    rows = []
    for outcome in outcomes:
        result = outcome.get("result")
        if result is None:
            rows.append({"benchmark": outcome["benchmark"], "scale": outcome["scale"], "ratio": "FAILED",
                         "value": "", "target": "", "met": str(outcome["exit_code"]),
                         "load (1 min) at each measurement": outcome["load_before"]})
            continue
        loads = [m["load_before"][0] for m in result.get("measurements") or [] if m.get("load_before")]
        for r in result.get("ratios") or []:
            rows.append({"benchmark": outcome["benchmark"], "scale": outcome["scale"], "ratio": r["ratio"],
                         "value": r["value"], "target": r["target"], "met": r["met"],
                         "load (1 min) at each measurement": loads})
    return rows


def scaling_rows(outcomes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per measurement and scale: rows, seconds, rows/s, peak driver memory, and growth vs the smallest scale."""
    rows = []
    first_seen: dict[tuple[str, str], dict[str, Any]] = {}
    for outcome in sorted(outcomes, key=lambda o: (o["benchmark"], o["scale"])):
        result = outcome.get("result")
        if result is None or outcome["benchmark"] in UNSCALED:
            continue
        for m in result.get("measurements") or []:
            key = (outcome["benchmark"], m["name"])
            base = first_seen.setdefault(key, m)
            data_growth = m["rows"] / base["rows"] if base.get("rows") else None
            time_growth = m["seconds"] / base["seconds"] if base.get("seconds") else None
            rows.append({"benchmark": outcome["benchmark"], "measurement": m["name"], "scale": outcome["scale"],
                         "rows": m.get("rows"), "seconds": m.get("seconds"), "rows/s": m.get("rows_per_second"),
                         "peak driver MiB": m.get("peak_driver_rss_mib", ""),
                         "data x": round(data_growth, 1) if data_growth else "",
                         "time x": round(time_growth, 2) if time_growth else "",
                         "load": m.get("load_before", "")})
    return rows


def write_summary(outcomes: list[dict[str, Any]], args: argparse.Namespace) -> Path:
    """Write ``summary.json`` and ``summary.md``; return the Markdown path."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    summary = {"finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"), "machine": machine(),
               "versions": versions(), "scales": args.scales,
               "runs": [{k: v for k, v in o.items() if k != "result"} for o in outcomes],
               "headlines": headline_rows(outcomes), "scaling": scaling_rows(outcomes)}
    (RESULTS_DIR / "summary.json").write_text(json.dumps(summary, indent=2, default=str) + "\n", encoding="utf-8")
    m = summary["machine"]
    lines = ["# Benchmark summary\n",
             f"Finished {summary['finished_at']} on {m['cpu_count']} cores ({m['cpu_model']}, {m['memory_gib']} GiB); "
             f"pyspark {summary['versions'].get('pyspark')}, delta-spark {summary['versions'].get('delta-spark')}, "
             f"feast {summary['versions'].get('feast')}, mlflow {summary['versions'].get('mlflow')}.\n",
             "Load average (1/5/15 min) is recorded next to every run: on a shared machine the figures are only "
             "as good as the load was low. Per-benchmark details (parameters, every measurement, profiles, "
             "notes on missed targets) are in the linked files.\n",
             "## Targets\n", table_markdown(summary["headlines"],
                                            ["benchmark", "scale", "ratio", "value", "target", "met",
                                             "load (1 min) at each measurement"]),
             "## Runs\n",
             table_markdown([{"benchmark": o["benchmark"], "scale": o["scale"], "exit": o["exit_code"],
                              "process s": o["process_seconds"], "load before": o["load_before"],
                              "load after": o["load_after"],
                              "results": f"[{Path(o['results']).stem}]({Path(o['results']).stem}.md)"}
                             for o in outcomes],
                            ["benchmark", "scale", "exit", "process s", "load before", "load after", "results"])]
    if len({o["scale"] for o in outcomes}) > 1:  # this run's scales or, with --only, earlier runs' too
        lines += ["## Scaling\n",
                  "`data x` and `time x` are relative to the smallest scale of the same measurement.\n",
                  table_markdown(summary["scaling"], ["benchmark", "measurement", "scale", "rows", "seconds", "rows/s",
                                                      "peak driver MiB", "data x", "time x", "load"])]
    path = RESULTS_DIR / "summary.md"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def seconds_left(deadline: str | None) -> float:
    """Seconds until the UTC time ``HH:MM`` today (infinite without a deadline)."""
    if not deadline:
        return float("inf")
    hour, minute = (int(x) for x in deadline.split(":"))
    now = datetime.now(timezone.utc)
    return (now.replace(hour=hour, minute=minute, second=0, microsecond=0) - now).total_seconds()


def build_parser() -> argparse.ArgumentParser:
    """Return the runner's argument parser."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run_all", description=__doc__.splitlines()[0])
    parser.add_argument("--scales", type=float, nargs="+", default=[1.0],
                        help="data scales to run each benchmark at (default 1; start-up runs once)")
    parser.add_argument("--only", nargs="+", choices=BENCHMARKS, help="run only these benchmarks")
    parser.add_argument("--repeat", type=int, help="timed repetitions per measurement (passed on)")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds per benchmark run (default 3600)")
    parser.add_argument("--summarize", action="store_true",
                        help="run nothing: rebuild summary.md|json from the results files already there "
                        "(benchmarks run one by one with --out benchmarks/results/<name>[_x<scale>])")
    parser.add_argument("--deadline", help="UTC time HH:MM by which every run must end (later runs are skipped, "
                        "a running one is stopped); the summary is rewritten after every run")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the benchmarks; exit code 1 when any run failed or a result check failed."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.summarize:
        found = collected_results()
        args.scales = sorted({o["scale"] for o in found}) or [1.0]
        print(write_summary(found, args).read_text(encoding="utf-8"))
        return 0
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    names = [n for n in (args.only or BENCHMARKS) if available(n)]
    for missing in sorted(set(args.only or BENCHMARKS) - set(names)):
        logger.warning("benchmark %s not present (benchmarks/%s.py), skipped", missing, missing)
    extra = ["--repeat", str(args.repeat)] if args.repeat else []
    outcomes: list[dict[str, Any]] = []
    plan = [(name, scale) for scale in args.scales for name in names
            if not (name in UNSCALED and scale != args.scales[0])]
    for name, scale in plan:
        timeout = min(args.timeout, seconds_left(args.deadline))
        if timeout < 60:
            logger.warning("deadline %s reached: %s at scale %s not run", args.deadline, name, scale)
            continue
        outcomes.append(run_one(name, scale, result_prefix(name, scale, args.scales[0]), extra, timeout))
        write_summary(outcomes + earlier_results([n for n, _ in plan]), args)
    outcomes += earlier_results([n for n, _ in plan])
    path = write_summary(outcomes, args)
    print(path.read_text(encoding="utf-8"))
    return 0 if all(o["exit_code"] in (0, "earlier run") for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
