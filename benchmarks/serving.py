"""Benchmark: real-time scoring with `featurelake serve` (MLflow's scoring server, features from Feast's
online store), on loopback only.

The demo's Production model (``models:/churn_model@champion``, a scikit-learn pipeline over 8
features of 2 feature tables) is served by ``featurelake serve --workers 2`` (one worker process
per core) on 127.0.0.1; this process is the client. After a warm-up:

1. single-row requests one after another (one keep-alive connection): p50 and p99 latency;
2. 100-row requests one after another: p50 and p99;
3. 8 clients (threads, one keep-alive connection each) sending single-row requests for 30 s:
   requests per second, errors, latency, and the server's CPU seconds per request (from the
   operating system: less sensitive to the other load on a shared machine than wall time);
   then the same against a single-process server (``--baseline-workers 1``) for comparison.

Every loop is bounded in count and in time and the script stops the server itself. Each answer
is checked: status 200, the customer ids asked for, model name and version; any other answer
counts as an error. Keys are random demo customers (some requests ask for the same one).

    python -m benchmarks.serving                        # runs the demo (with --online) in a scratch folder
    python -m benchmarks.serving --demo ./demo-run      # an existing `featurelake demo --online` folder
"""

from __future__ import annotations

import argparse
import http.client
import json
import logging
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psutil

from benchmarks.common import base_parser, load_average, main_for, result_header, target_row

logger = logging.getLogger(__name__)

NAME = "serving"
MODEL_URI = "models:/churn_model@champion"
TARGETS = {"single_p50_ms": 15.0, "single_p99_ms": 50.0, "rows100_p50_ms": 40.0, "sustained_rps": 300.0}
START_TIMEOUT = 600.0


def build_parser() -> argparse.ArgumentParser:
    """Return the benchmark's argument parser."""
    parser = base_parser("python -m benchmarks.serving", "Latency and throughput of featurelake serve (loopback).")
    parser.add_argument("--demo", help="an existing `featurelake demo --online` folder (default: run the demo)")
    parser.add_argument("--customers", type=int, default=500,
                        help="demo customers when the demo is run, or the key range of a --demo folder without its "
                             "customers file (default 500)")
    parser.add_argument("--warmup", type=int, default=300, help="untimed single-row requests first (default 300)")
    parser.add_argument("--single", type=int, default=1000, help="single-row requests timed (default 1000)")
    parser.add_argument("--hundred", type=int, default=300, help="100-row requests timed (default 300)")
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients of the sustained phase (default 8)")
    parser.add_argument("--seconds", type=float, default=30.0, help="length of the sustained phase (default 30)")
    parser.add_argument("--workers", type=int, default=2,
                        help="server worker processes (default 2: one per core of the target machine)")
    parser.add_argument("--baseline-workers", type=int, default=1,
                        help="also run the sustained phase against a server with this many workers (0: skip)")
    parser.add_argument("--phase-limit", type=float, default=180.0,
                        help="a latency phase stops after this many seconds whatever its count (default 180)")
    return parser


def prepare_demo(args: argparse.Namespace, scratch: Path) -> Path:
    """Return the configuration file of a demo with a materialized online store (running it if needed)."""
    if args.demo:
        config = Path(args.demo) / "featurelake.yaml"
        if not config.is_file():
            raise SystemExit(f"--demo {args.demo}: no featurelake.yaml there (run featurelake demo --online first)")
        return config
    from featurestore.core.config import Config
    from featurestore.runtime.spark_session import get_spark
    from jobs.demo.pipeline import CONFIG_FILE, run_demo

    settings = Config()
    settings.spark.master = "local[2]"
    spark = get_spark(settings, small_input=True)
    try:
        run_demo(spark, scratch / "demo", n_customers=args.customers, online=True)
    finally:
        spark.stop()
    return scratch / "demo" / CONFIG_FILE


class Server:
    """`featurelake serve` in its own process on 127.0.0.1 (a free port)."""

    def __init__(self, config: Path, log_dir: Path, workers: int) -> None:
        self.out, self.log = log_dir / f"serve-{workers}.out", log_dir / f"serve-{workers}.log"
        command = [sys.executable, "-m", "jobs.cli", "--config", str(config), "--log-level", "WARNING", "serve",
                   "--model-uri", MODEL_URI, "--host", "127.0.0.1", "--port", "0", "--reload-interval", "0",
                   "--workers", str(workers)]
        started = time.perf_counter()
        with open(self.out, "wb") as out, open(self.log, "wb") as err:
            self.process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=out, stderr=err)
        self.port = self._wait_for_port()
        self.ps = psutil.Process(self.process.pid)
        self._wait_for_answers()
        self.start_seconds = time.perf_counter() - started

    def _wait_for_answers(self) -> None:
        """Wait until /ping answers (the workers have loaded the model)."""
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            try:
                connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
                connection.request("GET", "/ping")
                if connection.getresponse().status == 200:
                    return
            except (OSError, http.client.HTTPException):
                time.sleep(0.2)
            finally:
                connection.close()
        raise SystemExit(f"featurelake serve did not answer /ping within {START_TIMEOUT:.0f} s")

    def _wait_for_port(self) -> int:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            for line in self.out.read_text(encoding="utf-8").splitlines():
                if line.startswith("serving ") and " at http://" in line:
                    return int(line.rsplit(":", 1)[1])
            if self.process.poll() is not None:
                raise SystemExit(f"featurelake serve exited with {self.process.returncode}: "
                                 f"{self.log.read_text()[-2000:]}")
            time.sleep(0.2)
        self.stop()
        raise SystemExit(f"featurelake serve did not start within {START_TIMEOUT:.0f} s")

    def cpu_seconds(self) -> float:
        """User + system CPU seconds the server's processes (the workers too) used so far."""
        total = 0.0
        for process in [self.ps, *self.ps.children(recursive=True)]:
            try:
                times = process.cpu_times()
            except psutil.Error:
                continue
            total += times.user + times.system
        return total

    def stop(self) -> None:
        """SIGTERM, then kill if it does not stop within 30 s."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


class Client:
    """One keep-alive connection sending scoring requests and checking each answer."""

    def __init__(self, port: int, customers: int, seed: int) -> None:
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        self.customers = customers
        self.random = random.Random(seed)

    def score(self, rows: int) -> tuple[float, bool]:
        """Send one request of ``rows`` random customers; return (seconds, answer correct)."""
        keys = [self.random.randint(1, self.customers) for _ in range(rows)]
        body = json.dumps({"dataframe_split": {"columns": ["customer_id"], "data": [[k] for k in keys]}})
        started = time.perf_counter()
        try:
            self.connection.request("POST", "/invocations", body, {"Content-Type": "application/json"})
            answer = self.connection.getresponse()
            payload = answer.read()
        except (OSError, http.client.HTTPException):
            self.connection.close()
            return time.perf_counter() - started, False
        seconds = time.perf_counter() - started
        return seconds, answer.status == 200 and _correct(payload, keys)

    def close(self) -> None:
        self.connection.close()


def _correct(payload: bytes, keys: list[int]) -> bool:
    rows = json.loads(payload)["predictions"]
    return ([r["customer_id"] for r in rows] == keys
            and all(r["model_name"] == "churn_model" and r["prediction"] in (0.0, 1.0) for r in rows))


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def latency_phase(name: str, client: Client, server: Server, rows: int, count: int, limit: float) -> dict[str, Any]:
    """``count`` requests of ``rows`` rows one after another (stopping after ``limit`` seconds)."""
    load = load_average()
    cpu_before, times, errors = server.cpu_seconds(), [], 0
    deadline = time.monotonic() + limit
    while len(times) < count and time.monotonic() < deadline:
        seconds, correct = client.score(rows)
        times.append(seconds)
        errors += not correct
    cpu = server.cpu_seconds() - cpu_before
    result = {
        "name": name, "rows_per_request": rows, "requests": len(times), "errors": errors,
        "p50_ms": round(_percentile(times, 0.50) * 1000, 2), "p99_ms": round(_percentile(times, 0.99) * 1000, 2),
        "mean_ms": round(statistics.fmean(times) * 1000, 2),
        "server_cpu_ms_per_request": round(cpu / len(times) * 1000, 2),
        "load_before": load, "load_after": load_average(),
    }
    logger.info("%s", result)
    return result


def sustained_phase(server: Server, customers: int, clients: int, seconds: float) -> dict[str, Any]:
    """``clients`` threads sending single-row requests for ``seconds``; each stops by itself."""
    load = load_average()
    results: list[list[tuple[float, bool]]] = [[] for _ in range(clients)]
    deadline = time.monotonic() + seconds
    max_requests = int(seconds * 5000)  # bound per client, far above what 2 cores answer

    def run(index: int) -> None:
        client = Client(server.port, customers, seed=1000 + index)
        try:
            while time.monotonic() < deadline and len(results[index]) < max_requests:
                results[index].append(client.score(1))
        finally:
            client.close()

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(clients)]
    cpu_before = server.cpu_seconds()
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=seconds + 60)
    elapsed = time.perf_counter() - started
    cpu = server.cpu_seconds() - cpu_before
    times = [t for per_client in results for t, _ in per_client]
    errors = sum(not ok for per_client in results for _, ok in per_client)
    result = {
        "name": f"{clients} clients x {seconds:g} s, single-row", "clients": clients, "seconds": round(elapsed, 2),
        "requests": len(times), "errors": errors, "requests_per_second": round(len(times) / elapsed, 1),
        "p50_ms": round(_percentile(times, 0.50) * 1000, 2), "p99_ms": round(_percentile(times, 0.99) * 1000, 2),
        "server_cpu_ms_per_request": round(cpu / max(len(times), 1) * 1000, 2),
        "server_cpu_cores_busy": round(cpu / elapsed, 2),
        "load_before": load, "load_after": load_average(),
    }
    logger.info("%s", result)
    return result


def _customers(config: Path, default: int) -> int:
    """The highest demo customer id (the demo's customers file), else ``default``: keys are drawn from 1 to it."""
    import pandas as pd

    from featurestore.core.config import load_config

    customers = Path(load_config(config).source_root) / "raw" / "customers.parquet"
    if not customers.exists():
        return default
    return int(pd.read_parquet(customers, columns=["customer_id"])["customer_id"].max())


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Run the benchmark; return its result."""
    scratch = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="featurelake-bench-serving-"))
    scratch.mkdir(parents=True, exist_ok=True)
    header = result_header(NAME, args, {
        "model_uri": MODEL_URI, "warmup_requests": args.warmup, "single_row_requests": args.single,
        "hundred_row_requests": args.hundred, "clients": args.clients, "sustained_seconds": args.seconds,
        "phase_limit_seconds": args.phase_limit, "workers": args.workers, "baseline_workers": args.baseline_workers,
        "demo": args.demo or f"run here ({args.customers} customers)"})
    try:
        config = prepare_demo(args, scratch)
        customers = _customers(config, args.customers)
        server = Server(config, scratch, args.workers)
        try:
            client = Client(server.port, customers, seed=1)
            warm = latency_phase("warm-up (untimed)", client, server, 1, args.warmup, args.phase_limit)
            single = latency_phase("single-row, sequential", client, server, 1, args.single, args.phase_limit)
            hundred = latency_phase("100-row, sequential", client, server, 100, args.hundred, args.phase_limit)
            client.close()
            sustained = {"workers": args.workers, **sustained_phase(server, customers, args.clients, args.seconds)}
        finally:
            server.stop()
        baselines = []
        if args.baseline_workers and args.baseline_workers != args.workers:
            baseline = Server(config, scratch, args.baseline_workers)
            try:
                warm_client = Client(baseline.port, customers, seed=2)
                latency_phase("baseline warm-up (untimed)", warm_client, baseline, 1, args.warmup, args.phase_limit)
                warm_client.close()
                baselines.append({"workers": args.baseline_workers,
                                  **sustained_phase(baseline, customers, args.clients, args.seconds)})
            finally:
                baseline.stop()
    finally:
        if not args.workdir:
            shutil.rmtree(scratch, ignore_errors=True)
    ratios = [
        target_row("single-row p50 (ms)", single["p50_ms"], f"<= {TARGETS['single_p50_ms']:g}",
                   single["p50_ms"] <= TARGETS["single_p50_ms"]),
        target_row("single-row p99 (ms)", single["p99_ms"], f"<= {TARGETS['single_p99_ms']:g}",
                   single["p99_ms"] <= TARGETS["single_p99_ms"]),
        target_row("100-row p50 (ms)", hundred["p50_ms"], f"<= {TARGETS['rows100_p50_ms']:g}",
                   hundred["p50_ms"] <= TARGETS["rows100_p50_ms"]),
        target_row(f"sustained req/s ({args.clients} clients)", sustained["requests_per_second"],
                   f">= {TARGETS['sustained_rps']:g}, 0 errors",
                   sustained["requests_per_second"] >= TARGETS["sustained_rps"] and sustained["errors"] == 0),
    ]
    errors = warm["errors"] + single["errors"] + hundred["errors"] + sustained["errors"] + \
        sum(b["errors"] for b in baselines)
    return {
        **header,
        "summary": [
            f"server start (process start to first answer): {server.start_seconds:.1f} s",
            f"single-row: p50 {single['p50_ms']} ms, p99 {single['p99_ms']} ms; 100-row: p50 {hundred['p50_ms']} ms",
            f"sustained: {sustained['requests_per_second']} req/s with {args.clients} clients and {args.workers} "
            f"worker process(es), {sustained['errors']} errors, server CPU {sustained['server_cpu_ms_per_request']} ms "
            "per request",
            *[f"sustained with {b['workers']} worker process(es): {b['requests_per_second']} req/s, {b['errors']} "
              f"errors, server CPU {b['server_cpu_ms_per_request']} ms per request" for b in baselines],
            f"load average (1/5/15 min) at start {header['load_at_start']}: 2 cores shared with other work",
        ],
        "tables": {"Latency phases": [warm, single, hundred], "Sustained load": [sustained, *baselines]},
        "ratios": ratios,
        "server_start_seconds": round(server.start_seconds, 2),
        "equal": errors == 0,
        "notes": [
            "Client and server share the machine's cores (loopback only); the client is this Python process "
            "(http.client, keep-alive).",
            "server_cpu_ms_per_request is the server process's user+system CPU time over the phase divided by "
            "its requests: what one request costs whatever else runs on the machine.",
        ],
    }


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit code (1 when an answer was wrong)."""
    return main_for(NAME, build_parser(), run, argv)


if __name__ == "__main__":
    sys.exit(main())
