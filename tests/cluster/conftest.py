"""Session fixtures for the cluster tests: a standalone Spark master + one worker and an MLflow
tracking server on loopback, started once and stopped at the end of the session (also after a
failure). See cluster_services.py for how they are started."""

from __future__ import annotations

import os
import sys
from typing import Iterator

import pytest

from cluster_services import (LOOPBACK, WORKER_CORES, WORKER_MEMORY, MlflowServer, SparkCluster,
                              daemon_env, free_port, http_get, spark_home, start_service, wait_until)


@pytest.fixture(scope="session")
def spark_cluster(tmp_path_factory) -> Iterator[SparkCluster]:
    """A standalone Spark master and one worker (1 core, modest memory) on loopback."""
    root = tmp_path_factory.mktemp("spark-cluster")
    spark_class = str(spark_home() / "bin" / "spark-class")
    env = daemon_env(root)
    master_port, master_ui, worker_port, worker_ui = (free_port() for _ in range(4))
    cluster = SparkCluster(f"spark://{LOOPBACK}:{master_port}", f"http://{LOOPBACK}:{master_ui}", root)
    try:
        master = start_service(
            "Spark master",
            [spark_class, "org.apache.spark.deploy.master.Master", "--host", LOOPBACK,
             "--port", str(master_port), "--webui-port", str(master_ui)],
            root / "master.log", env)
        cluster.services.append(master)
        wait_until(master, lambda: '"status" : "ALIVE"' in (http_get(cluster.web_url + "/json/") or ""),
                   "the master answering as ALIVE")
        worker = start_service(
            "Spark worker",
            [spark_class, "org.apache.spark.deploy.worker.Worker", cluster.master_url, "--host", LOOPBACK,
             "--port", str(worker_port), "--webui-port", str(worker_ui), "--cores", str(WORKER_CORES),
             "--memory", WORKER_MEMORY, "--work-dir", str(root / "work")],
            root / "worker.log", env)
        cluster.services.append(worker)
        wait_until(worker, lambda: cluster.state().get("aliveworkers", 0) >= 1, "the worker registering")
        yield cluster
    finally:
        for service in reversed(cluster.services):
            service.stop()


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory) -> Iterator[MlflowServer]:
    """An MLflow tracking server (SQLite backend, artifacts served from a local folder) on loopback."""
    root = tmp_path_factory.mktemp("mlflow-server")
    port = free_port()
    backend = f"sqlite:///{root / 'mlflow.db'}"
    artifacts = root / "artifacts"
    env = dict(os.environ)
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI"):
        env.pop(name, None)
    service = start_service(
        "MLflow server",
        [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", backend,
         "--artifacts-destination", str(artifacts), "--host", LOOPBACK, "--port", str(port),
         "--workers", "1"],
        root / "mlflow.log", env)
    url = f"http://{LOOPBACK}:{port}"
    try:
        wait_until(service, lambda: http_get(url + "/health") is not None, "the server answering /health")
        yield MlflowServer(url, backend, artifacts, service)
    finally:
        service.stop()
