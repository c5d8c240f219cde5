"""Start and stop the parts of a real, small cluster for the cluster tests: a standalone Spark
master with one worker, and an MLflow tracking server, all on the loopback interface on free ports.

The Spark daemons come from the pip-installed pyspark (``bin/spark-class ...Master`` and
``...Worker``); the MLflow server is ``python -m mlflow server`` with a SQLite backend and a local
artifact folder served through the server. Every start-up wait is bounded, and every process is
stopped (its whole process group) when the session ends, also after a failure.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

LOOPBACK = "127.0.0.1"
REPO_ROOT = Path(__file__).resolve().parents[2]
SPARK_SUBMIT_SH = REPO_ROOT / "spark-submit.sh"
START_TIMEOUT_S = 300  # the machine is small and shared: JVM and MLflow start-ups can be slow
WORKER_CORES = 1
WORKER_MEMORY = "1536m"
EXECUTOR_MEMORY = "1g"


def spark_home() -> Path:
    """Return the Spark distribution inside the installed pyspark package."""
    from pyspark.find_spark_home import _find_spark_home

    return Path(_find_spark_home())


def free_port() -> int:
    """Return a TCP port on the loopback interface that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


def http_get(url: str, timeout: float = 5.0) -> str | None:
    """Return the body of ``url``, or None when it does not answer (yet)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - loopback only
            return response.read().decode("utf-8")
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
        return None


def log_tail(path: Path, lines: int = 40) -> str:
    """Return the last ``lines`` lines of a log file (for failure messages)."""
    if not path.exists():
        return f"(no log at {path})"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


@dataclass
class Service:
    """A process started for the tests, with its log file."""

    name: str
    process: subprocess.Popen
    log: Path

    def stop(self, grace_s: float = 20.0) -> None:
        """Stop the process and everything it started (its process group)."""
        if self.process.poll() is not None:
            return
        for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 10.0)):
            try:
                os.killpg(self.process.pid, sig)
            except ProcessLookupError:
                return
            try:
                self.process.wait(timeout=wait_s)
                return
            except subprocess.TimeoutExpired:
                continue


def start_service(name: str, cmd: list[str], log: Path, env: dict[str, str]) -> Service:
    """Start ``cmd`` in its own process group with stdout and stderr going to ``log``."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "wb") as out:
        process = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   env=env, start_new_session=True)
    return Service(name, process, log)


def wait_until(service: Service, ready: Callable[[], bool], what: str, timeout_s: float = START_TIMEOUT_S) -> None:
    """Poll ``ready`` until it is true; fail with the service's log when it dies or times out."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if service.process.poll() is not None:
            raise RuntimeError(f"{service.name} exited with code {service.process.returncode} before "
                               f"{what}; log {service.log}:\n{log_tail(service.log)}")
        if ready():
            return
        time.sleep(1.0)
    raise RuntimeError(f"{service.name}: {what} did not happen within {timeout_s:.0f} s; "
                       f"log {service.log}:\n{log_tail(service.log)}")


@dataclass
class SparkCluster:
    """A running standalone Spark cluster."""

    master_url: str
    web_url: str
    root: Path
    services: list[Service] = field(default_factory=list)

    def state(self) -> dict:
        """The master's JSON status (workers, active and completed applications)."""
        body = http_get(self.web_url + "/json/")
        if body is None:
            raise RuntimeError(f"the Spark master web UI at {self.web_url} does not answer")
        return json.loads(body)

    def submit_conf(self) -> list[str]:
        """``--conf`` arguments that keep a submitted application on loopback and small."""
        pairs = {
            "spark.driver.host": LOOPBACK,
            "spark.driver.bindAddress": LOOPBACK,
            "spark.driver.memory": "1g",
            "spark.executor.memory": EXECUTOR_MEMORY,
            "spark.executor.cores": str(WORKER_CORES),
            "spark.cores.max": str(WORKER_CORES),
            "spark.ui.enabled": "false",
        }
        return [arg for key, value in pairs.items() for arg in ("--conf", f"{key}={value}")]


@dataclass
class MlflowServer:
    """A running MLflow tracking server."""

    url: str
    backend_uri: str
    artifacts: Path
    service: Service


def daemon_env(root: Path) -> dict[str, str]:
    """Environment for the Spark daemons: loopback only, logs and scratch space under ``root``."""
    env = dict(os.environ)
    env.update({
        "SPARK_HOME": str(spark_home()),
        "SPARK_LOCAL_IP": LOOPBACK,
        "SPARK_LOG_DIR": str(root / "logs"),
        "SPARK_LOCAL_DIRS": str(root / "local"),
        "SPARK_WORKER_DIR": str(root / "work"),
        "SPARK_DAEMON_MEMORY": "512m",
        "PYSPARK_PYTHON": sys.executable,
    })
    env.pop("PYSPARK_GATEWAY_PORT", None)
    return env


def run_submit(args: list[str], cwd: Path, env: dict[str, str] | None = None,
               timeout_s: float = 1200) -> subprocess.CompletedProcess:
    """Run ``spark-submit.sh ARGS`` from ``cwd`` and return the finished process (text output)."""
    full_env = dict(os.environ if env is None else env)
    full_env.setdefault("SPARK_HOME", str(spark_home()))
    full_env["SPARK_LOCAL_IP"] = LOOPBACK
    full_env["PYTHON"] = sys.executable
    full_env.pop("PYSPARK_GATEWAY_PORT", None)
    return subprocess.run([str(SPARK_SUBMIT_SH), *args], cwd=cwd, env=full_env, text=True,
                          capture_output=True, timeout=timeout_s, stdin=subprocess.DEVNULL)
