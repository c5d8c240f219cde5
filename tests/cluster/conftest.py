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
def cluster(tmp_path_factory) -> Iterator[tuple[SparkCluster, MlflowServer]]:
    """A standalone Spark master with one worker (1 core, modest memory) and an MLflow tracking
    server (SQLite backend, artifacts served from a local folder), all on loopback.

    The master and the MLflow server start side by side (both are slow to start on a busy machine);
    the worker starts once the master answers.
    """
    spark_root = tmp_path_factory.mktemp("spark-cluster")
    mlflow_root = tmp_path_factory.mktemp("mlflow-server")
    spark_class = str(spark_home() / "bin" / "spark-class")
    env = daemon_env(spark_root)
    master_port, master_ui, worker_port, worker_ui, mlflow_port = (free_port() for _ in range(5))
    spark = SparkCluster(f"spark://{LOOPBACK}:{master_port}", f"http://{LOOPBACK}:{master_ui}", spark_root)
    services = spark.services
    try:
        master = start_service(
            "Spark master",
            [spark_class, "org.apache.spark.deploy.master.Master", "--host", LOOPBACK,
             "--port", str(master_port), "--webui-port", str(master_ui)],
            spark_root / "master.log", env)
        services.append(master)

        mlflow_env = dict(os.environ)
        for name in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI"):
            mlflow_env.pop(name, None)
        backend = f"sqlite:///{mlflow_root / 'mlflow.db'}"
        artifacts = mlflow_root / "artifacts"
        tracking = start_service(
            "MLflow server",
            [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", backend,
             "--artifacts-destination", str(artifacts), "--host", LOOPBACK, "--port", str(mlflow_port),
             "--workers", "1"],
            mlflow_root / "mlflow.log", mlflow_env)
        services.append(tracking)
        mlflow = MlflowServer(f"http://{LOOPBACK}:{mlflow_port}", backend, artifacts, tracking)

        wait_until(master, lambda: '"status" : "ALIVE"' in (http_get(spark.web_url + "/json/") or ""),
                   "the master answering as ALIVE")
        worker = start_service(
            "Spark worker",
            [spark_class, "org.apache.spark.deploy.worker.Worker", spark.master_url, "--host", LOOPBACK,
             "--port", str(worker_port), "--webui-port", str(worker_ui), "--cores", str(WORKER_CORES),
             "--memory", WORKER_MEMORY, "--work-dir", str(spark_root / "work")],
            spark_root / "worker.log", env)
        services.append(worker)
        wait_until(worker, lambda: spark.state().get("aliveworkers", 0) >= 1, "the worker registering")
        wait_until(tracking, lambda: http_get(mlflow.url + "/health") is not None, "the server answering /health")
        yield spark, mlflow
    finally:
        for service in reversed(services):
            service.stop()


@pytest.fixture(scope="session")
def spark_cluster(cluster) -> SparkCluster:
    """The standalone Spark cluster of :func:`cluster`."""
    return cluster[0]


@pytest.fixture(scope="session")
def mlflow_server(cluster) -> MlflowServer:
    """The MLflow tracking server of :func:`cluster`."""
    return cluster[1]
