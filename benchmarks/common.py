"""What every benchmark shares: machine facts, load, peak driver memory, timers, results files.

A benchmark module exposes ``build_parser()`` and ``run(args) -> dict`` and calls
:func:`main_for` from ``main``; the result dict is printed and written to
``benchmarks/results/<name>.json`` and ``.md`` (or ``--out PREFIX``).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import socket
import statistics
import sys
import threading
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import psutil

logger = logging.getLogger(__name__)

RESULTS_DIR = Path(__file__).resolve().parent / "results"
PACKAGES = ("pyspark", "delta-spark", "feast", "mlflow", "pandas", "pyarrow", "featurelake")


def versions() -> dict[str, str]:
    """Return the versions of the packages that matter for the figures (and Python, Java)."""
    found = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "not installed"
    java = os.environ.get("JAVA_HOME", "")
    found["java_home"] = java or "(java on PATH)"
    return found


def load_average() -> list[float]:
    """Return the 1, 5 and 15 minute load averages, rounded."""
    return [round(x, 2) for x in os.getloadavg()]


def machine() -> dict[str, Any]:
    """Return what the figures were measured on."""
    return {
        "host": socket.gethostname(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
    }


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _driver_processes() -> tuple[psutil.Process, list[psutil.Process]]:
    me = psutil.Process()
    jvms = []
    for child in me.children(recursive=True):
        try:
            if "java" in child.name():
                jvms.append(child)
        except psutil.Error:
            continue
    return me, jvms


class MemorySampler:
    """Samples the RSS of this Python process and of its driver JVM (java child) in a thread.

    In local mode the driver JVM also runs the executors, so its RSS is the whole Spark
    footprint; Python workers (pyspark.daemon) are not counted.
    """

    def __init__(self, interval: float = 0.2) -> None:
        self.interval = interval
        self.peak_python = 0
        self.peak_jvm = 0
        self.peak_total = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _sample(self) -> None:
        me, jvms = _driver_processes()
        try:
            py = me.memory_info().rss
        except psutil.Error:
            py = 0
        jvm = 0
        for proc in jvms:
            try:
                jvm += proc.memory_info().rss
            except psutil.Error:
                continue
        self.peak_python = max(self.peak_python, py)
        self.peak_jvm = max(self.peak_jvm, jvm)
        self.peak_total = max(self.peak_total, py + jvm)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(self.interval)

    def reset(self) -> None:
        """Forget the peaks so far (to measure one phase)."""
        self._sample()
        self.peak_python = self.peak_jvm = self.peak_total = 0
        self._sample()

    def snapshot(self) -> dict[str, float]:
        """Return the peaks in MiB."""
        self._sample()
        mib = 2**20
        return {"peak_python_rss_mib": round(self.peak_python / mib, 1),
                "peak_jvm_rss_mib": round(self.peak_jvm / mib, 1),
                "peak_driver_rss_mib": round(self.peak_total / mib, 1)}

    def __enter__(self) -> "MemorySampler":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=2)


def measure(name: str, action: Callable[[], Any], rows: int, sampler: MemorySampler | None = None,
            repeat: int = 1, before: Callable[[], Any] | None = None) -> dict[str, Any]:
    """Run ``action`` ``repeat`` times (``before`` untimed before each) and return its figures.

    The figures are the median wall time, rows per second at the median, every time, the
    load average at the start and end and the peak driver memory over the runs.
    """
    times = []
    load_before = load_average()
    if sampler is not None:
        sampler.reset()
    for _ in range(repeat):
        if before is not None:
            before()
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    figures = _figures(name, rows, times, load_before)
    if sampler is not None:
        figures.update(sampler.snapshot())
    logger.info("%s: %.2f s (%s rows/s), load %s", name, figures["seconds"], figures["rows_per_second"], load_before)
    return figures


def _figures(name: str, rows: int, times: list[float], load_before: list[float] | None) -> dict[str, Any]:
    """The figures of one measurement: median and every time, rows per second at the median, load."""
    median = statistics.median(times)
    return {
        "name": name,
        "rows": rows,
        "seconds": round(median, 3),
        "all_seconds": [round(t, 3) for t in times],
        "rows_per_second": round(rows / median) if median > 0 else None,
        "load_before": load_before,
        "load_after": load_average(),
    }


def measure_rounds(cases: Sequence[tuple[str, Callable[[], Any], int]], sampler: MemorySampler | None = None,
                   repeat: int = 1, before: Callable[[], Any] | None = None,
                   warmup: bool = True) -> list[dict[str, Any]]:
    """Time actions against each other, in rounds; return one result per action, as :func:`measure` does.

    ``cases`` are (name, action, rows). An untimed warm-up round comes first (unless ``warmup`` is
    false: then the first round is timed too, as a smoke test wants), then ``repeat``
    timed rounds. Each round runs every action once (``before`` untimed before each) in an order
    rotated by one per round, so every action is timed as warm as the others (JIT-compiled at
    full size, not only on a few rows) and under the same load. The warm-up run's time is kept
    as ``first_run_seconds``: what a fresh process pays for the action.
    """
    first = [0.0 for _ in cases]
    times: list[list[float]] = [[] for _ in cases]
    peaks: list[dict[str, float]] = [{} for _ in cases]
    loads: list[list[float] | None] = [None for _ in cases]
    for round_number in range(0 if warmup else 1, repeat + 1):
        shift = round_number % len(cases)
        for index in list(range(shift, len(cases))) + list(range(shift)):
            action = cases[index][1]
            if before is not None:
                before()
            if round_number > 0 and loads[index] is None:
                loads[index] = load_average()
            if sampler is not None:
                sampler.reset()
            started = time.perf_counter()
            action()
            seconds = time.perf_counter() - started
            if round_number == 0:
                first[index] = seconds
                continue
            times[index].append(seconds)
            if sampler is not None:
                peaks[index] = {k: max(v, peaks[index].get(k, 0.0)) for k, v in sampler.snapshot().items()}
    results = []
    for index, (name, _, rows) in enumerate(cases):
        figures = {**_figures(name, rows, times[index], loads[index]),
                   "first_run_seconds": round(first[index] if warmup else times[index][0], 3), **peaks[index]}
        logger.info("%s: %.2f s (%s rows/s; first run %.2f s), load %s", name, figures["seconds"],
                    figures["rows_per_second"], figures["first_run_seconds"], loads[index])
        results.append(figures)
    return results


def compute_all(df: Any) -> None:
    """Compute every row of the Spark DataFrame ``df`` into Spark's ``noop`` sink (nothing is
    collected to the driver)."""
    df.write.format("noop").mode("overwrite").save()


@contextmanager
def phase(marks: list[tuple[str, float]], name: str) -> Iterator[None]:
    """Append (name, seconds) for the enclosed block to ``marks``."""
    started = time.perf_counter()
    try:
        yield
    finally:
        marks.append((name, round(time.perf_counter() - started, 3)))


# What write_feature_table does (featurestore.delta_tables), in order: create a new table, or
# check, update and upsert an existing one.
WRITE_STEPS = ("current_version", "create_table_with", "check_table_columns", "sync_metadata", "source_spans_table",
               "rewrite_upsert", "merge_into", "_last_commit")


@contextmanager
def timed_steps(module: Any, names: Sequence[str]) -> Iterator[list[dict[str, Any]]]:
    """Time every call of the functions ``names`` of ``module`` made in the block (wrapped, then restored)."""
    steps: list[dict[str, Any]] = []
    originals = {name: getattr(module, name) for name in names}

    def timed(name: str, function: Any) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                steps.append({"step": name, "seconds": round(time.perf_counter() - started, 3)})
        return call

    for name, function in originals.items():
        setattr(module, name, timed(name, function))
    try:
        yield steps
    finally:
        for name, function in originals.items():
            setattr(module, name, function)


def base_parser(prog: str, description: str) -> argparse.ArgumentParser:
    """Return a parser with the options every benchmark takes."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--scale", type=float, default=1.0, help="multiply the default sizes (default 1)")
    parser.add_argument("--repeat", type=int, default=1, help="timed repetitions per measurement (median)")
    parser.add_argument("--workdir", help="scratch folder (default: a temporary folder, removed afterwards)")
    parser.add_argument("--out", help="results file prefix (default benchmarks/results/<name>); "
                        "'-' writes no file")
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    return parser


def result_header(name: str, args: argparse.Namespace, parameters: dict[str, Any]) -> dict[str, Any]:
    """Return the part of a result every benchmark shares."""
    return {
        "benchmark": name,
        "started_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": machine(),
        "versions": versions(),
        "parameters": {"scale": args.scale, "repeat": args.repeat, **parameters},
        "load_at_start": load_average(),
    }


def ratio(numerator: float, denominator: float) -> float | None:
    """Return numerator / denominator rounded (None when undefined)."""
    if not denominator:
        return None
    return round(numerator / denominator, 2)


def write_results(result: dict[str, Any], prefix: str | Path) -> tuple[Path, Path]:
    """Write ``result`` as ``<prefix>.json`` and a Markdown rendering as ``<prefix>.md``."""
    prefix = Path(prefix)
    prefix.parent.mkdir(parents=True, exist_ok=True)
    json_path = prefix.parent / (prefix.name + ".json")   # not with_suffix: "x0.1" has a dot
    md_path = prefix.parent / (prefix.name + ".md")
    json_path.write_text(json.dumps(result, indent=2, default=str) + "\n", encoding="utf-8")
    md_path.write_text(to_markdown(result), encoding="utf-8")
    return json_path, md_path


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.3f}".rstrip("0").rstrip(".") if abs(value) < 1000 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, list):
        return ", ".join(_cell(v) for v in value)
    return str(value)


def table_markdown(rows: list[dict[str, Any]], columns: list[str]) -> str:
    """Render ``rows`` as a Markdown table with ``columns``."""
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    for row in rows:
        lines.append("| " + " | ".join(_cell(row.get(c, "")) for c in columns) + " |")
    return "\n".join(lines) + "\n"


MEASUREMENT_COLUMNS = ["name", "rows", "seconds", "all_seconds", "cpu_seconds", "first_run_seconds", "rows_per_second",
                       "peak_driver_rss_mib", "peak_jvm_rss_mib", "peak_python_rss_mib", "load_before"]


def to_markdown(result: dict[str, Any]) -> str:
    """Render one benchmark result as Markdown."""
    out = [f"# Benchmark: {result['benchmark']}\n",
           f"Run at {result['started_at']} on {result['machine']['cpu_count']} cores "
           f"({result['machine']['cpu_model']}, {result['machine']['memory_gib']} GiB), "
           f"load average at start {_cell(result['load_at_start'])} (1/5/15 min).\n"]
    if result.get("summary"):
        out.append("## Summary\n")
        out.extend(f"- {line}" for line in result["summary"])
        out.append("")
    out.append("## Parameters\n")
    out.append(table_markdown([{"parameter": k, "value": v} for k, v in result["parameters"].items()],
                              ["parameter", "value"]))
    if result.get("measurements"):
        out.append("## Measurements\n")
        columns = [c for c in MEASUREMENT_COLUMNS if any(c in m for m in result["measurements"])]
        out.append(table_markdown(result["measurements"], columns))
    if result.get("ratios"):
        out.append("## Ratios and targets\n")
        out.append(table_markdown(result["ratios"], ["ratio", "value", "target", "met"]))
    for title, rows in (result.get("tables") or {}).items():
        if rows:
            out.append(f"## {title}\n")
            out.append(table_markdown(rows, list(rows[0].keys())))
    if result.get("notes"):
        out.append("## Notes\n")
        out.extend(f"- {line}" for line in result["notes"])
        out.append("")
    out.append("## Versions\n")
    out.append(table_markdown([{"package": k, "version": v} for k, v in result["versions"].items()],
                              ["package", "version"]))
    return "\n".join(out)


def create_feature_table(spark: Any, table: Any, path: str, df: Any) -> None:
    """Create the Delta feature table ``table`` at ``path`` holding ``df`` (with featurelake metadata), in one commit."""
    from featurestore.delta_tables import create_table_with

    create_table_with(spark, table, path, df)


def target_row(name: str, value: float | None, target: str, met: bool | None) -> dict[str, Any]:
    """Return one row of the ratios table."""
    return {"ratio": name, "value": value, "target": target,
            "met": "n/a" if met is None else ("yes" if met else "NO")}


def main_for(name: str, parser: argparse.ArgumentParser, run: Callable[[argparse.Namespace], dict[str, Any]],
             argv: list[str] | None = None,
             worker: Callable[[argparse.Namespace], None] | None = None) -> int:
    """Parse arguments, run the benchmark, print and write its results; return the exit code.

    With ``worker`` given and ``--worker`` set, run only ``worker`` (one side of the benchmark in a
    fresh process, started by ``run``) and return 0.
    """
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", force=True)
    if worker is not None and args.worker:
        worker(args)
        return 0
    for noisy in ("py4j", "feast", "urllib3", "mlflow", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    result = run(args)
    result["finished_at"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    result["load_at_end"] = load_average()
    print(json.dumps({k: result[k] for k in ("benchmark", "ratios", "load_at_start", "load_at_end")
                      if k in result}, indent=2, default=str))
    if args.out != "-":
        prefix = args.out or RESULTS_DIR / result.get("results_name", name)
        paths = write_results(result, prefix)
        print(f"results written to {paths[0]} and {paths[1]}")
    failed = result.get("equal") is False
    return 1 if failed else 0
