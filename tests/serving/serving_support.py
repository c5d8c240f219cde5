"""Shared helpers of the serving tests: a project with a trained, aliased model and a materialized online
store, and the `featurelake serve` process on a loopback port."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from featurestore.core.config import Config, resolve_paths, write_config
from featurestore.feast_repo import register_tables
from featurestore.online import materialize
from inference import registry
from inference.settings import TRAINING
from inference.training import train_model
from jobs.demo.feature_tables import FEATURE_TABLES
from jobs.demo.lifecycle import LABELS_PATH, MODEL_NAME
from jobs.demo.pipeline import CONFIG_FILE, demo_config

MODEL_URI = f"models:/{MODEL_NAME}@champion"
START_TIMEOUT = 300  # seconds: the machine is shared; a cold start imports MLflow, Feast and scikit-learn


def make_serving_project(spark, demo_project: Config, root: Path) -> Config:
    """A project under ``root``: copies of the demo's feature tables registered in Feast and materialized,
    ``churn_model`` version 1 trained on them by featurelake's training job, alias ``champion`` on it."""
    config = resolve_paths(demo_config(root), root)
    TRAINING.of(config).labels_path = str(Path(demo_project.source_root) / LABELS_PATH)
    for table in FEATURE_TABLES:
        shutil.copytree(demo_project.table_path(table.name), config.table_path(table.name))
    register_tables(config, FEATURE_TABLES)
    materialize(spark, config)
    result = train_model(spark, config, run_name="serving-tests")
    registry.set_alias(config, MODEL_NAME, "champion", result.model_version)
    write_config(config, root / CONFIG_FILE)
    return config


def config_file(config: Config) -> str:
    """The configuration file of a project made by :func:`make_serving_project`."""
    return str(Path(config.base_dir) / CONFIG_FILE)


@dataclass
class Response:
    """One HTTP answer."""

    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class RunningServer:
    """A `featurelake serve` process started by a test."""

    process: subprocess.Popen
    url: str
    log: Path

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def request(self, method: str, path: str, body: bytes | str | None = None,
                content_type: str | None = "application/json") -> Response:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        try:
            headers = {"Content-Type": content_type} if content_type else {}
            connection.request(method, path, body=body, headers=headers)
            answer = connection.getresponse()
            return Response(answer.status, {k.lower(): v for k, v in answer.getheaders()}, answer.read())
        finally:
            connection.close()

    def score(self, payload: dict) -> Response:
        """POST ``payload`` (a dataframe_split or dataframe_records body) to /invocations."""
        return self.request("POST", "/invocations", json.dumps(payload))

    def stop(self) -> int:
        """SIGTERM, as a service manager would stop it; return the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                return self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def start_server(config: Config, log_dir: Path, *args: str, model_uri: str = MODEL_URI) -> RunningServer:
    """Start `featurelake serve` on 127.0.0.1 (a free port) and wait until it answers /ping."""
    log_dir.mkdir(parents=True, exist_ok=True)
    out, log = log_dir / "serve.out", log_dir / "serve.log"
    command = [sys.executable, "-m", "jobs.cli", "--config", config_file(config), "serve", "--model-uri", model_uri,
               "--host", "127.0.0.1", "--port", "0", *args]
    with open(out, "wb") as stdout, open(log, "wb") as stderr:
        process = subprocess.Popen(command, stdout=stdout, stderr=stderr, env=os.environ.copy())
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        for line in out.read_text(encoding="utf-8").splitlines():
            if line.startswith("serving ") and " at http://" in line:
                server = RunningServer(process, line.rsplit(" at ", 1)[1].strip(), log)
                if server.request("GET", "/ping", content_type=None).status == 200:
                    return server
        if process.poll() is not None:
            raise AssertionError(f"featurelake serve exited with {process.returncode}: {log.read_text()[-3000:]}")
        time.sleep(0.5)
    process.kill()
    raise AssertionError(f"featurelake serve did not start within {START_TIMEOUT} s: {log.read_text()[-3000:]}")


def assert_one_line_error(response: Response, status: int, *words: str) -> dict:
    """``response`` is ``status`` with a body of one line of JSON {error_code, message} naming ``words``."""
    assert response.status == status, (response.status, response.body)
    text = response.body.decode()
    assert text.count("\n") == 1 and text.endswith("\n"), text
    error = json.loads(text)
    assert set(error) == {"error_code", "message"}, error
    assert error["message"] and "Traceback" not in text and "stack_trace" not in text
    for word in words:
        assert word in error["message"], (word, error["message"])
    return error


def free_port() -> int:
    """A port free on 127.0.0.1 now (for servers that cannot pick their own)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_answering(process: subprocess.Popen, port: int, path: str, log: Path) -> None:
    """Wait until ``process`` answers ``GET path`` on 127.0.0.1:``port`` with 200."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"server exited with {process.returncode}: {log.read_text()[-3000:]}")
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            connection.request("GET", path)
            if connection.getresponse().status == 200:
                return
        except OSError:
            pass
        finally:
            connection.close()
        time.sleep(0.5)
    raise AssertionError(f"server did not answer {path} within {START_TIMEOUT} s: {log.read_text()[-3000:]}")


def post_json(port: int, path: str, payload: dict) -> Response:
    """POST ``payload`` as JSON to 127.0.0.1:``port``."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        connection.request("POST", path, body=json.dumps(payload), headers={"Content-Type": "application/json"})
        answer = connection.getresponse()
        return Response(answer.status, {k.lower(): v for k, v in answer.getheaders()}, answer.read())
    finally:
        connection.close()


def stop_process(process: subprocess.Popen) -> None:
    """SIGTERM ``process`` (a server this test started); kill it if it does not stop."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
