"""End to end on a real cluster: the jobs submitted with spark-submit.sh to a standalone Spark
master (one worker) with tracking and registry in an MLflow server, then the Delta tables and the
registry checked from outside (deltalake, MlflowClient), with no Spark session in the test process.

Submissions run from a folder that is neither the repository nor the project, so nothing depends
on the driver's working directory; executors get the code from the --py-files archive and reach
the tables by their absolute file:// paths (master, worker and driver share this machine's disk).
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from deltalake import DeltaTable
from mlflow.tracking import MlflowClient

from cluster_services import MlflowServer, SparkCluster, run_submit
from featurestore.core.config import load_config, write_config

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

CUSTOMERS = 120
MODEL_NAME = "churn_model"  # the demo's training section (demo/lifecycle.py)
SMALL_CLUSTER_CONF = {  # tiny data on a 1-core worker: few partitions
    "spark.sql.shuffle.partitions": "2",
    "spark.default.parallelism": "2",
    "spark.databricks.delta.snapshotPartitions": "2",
}


def submit(cluster: SparkCluster, job: str, args: list[str], cwd: Path) -> str:
    """Submit ``job`` to the cluster through spark-submit.sh; fail with its output unless it exits 0."""
    result = run_submit(["--master", cluster.master_url, *cluster.submit_conf(), job, *args], cwd=cwd)
    assert result.returncode == 0, f"{job} exited {result.returncode}:\n{(result.stdout + result.stderr)[-6000:]}"
    assert f"--master {cluster.master_url}" in result.stderr  # the printed command
    return result.stdout


def json_output(output: str) -> dict:
    """The JSON object a job printed with --json (Spark's own chatter goes to stderr)."""
    return json.loads(output[output.index("{"):output.rindex("}") + 1])


def assert_nothing_written(folder: Path) -> None:
    """Nothing but empty folders (Spark's default catalog folder) in the driver's working directory."""
    files = [p for p in folder.rglob("*") if not p.is_dir()]
    assert not files, f"the jobs wrote into the driver's working directory: {files}"


def finished_apps(cluster: SparkCluster) -> dict[str, list[dict]]:
    """The master's completed applications, by name."""
    apps: dict[str, list[dict]] = {}
    for app in cluster.state()["completedapps"]:
        apps.setdefault(app["name"], []).append(app)
    return apps


def assert_ran_on_cluster(cluster: SparkCluster, job: str) -> None:
    """The application ran on the standalone master and the worker started an executor for it."""
    apps = finished_apps(cluster).get(f"featurelake-{job}")
    assert apps, f"the master has no completed application featurelake-{job}: {sorted(finished_apps(cluster))}"
    assert apps[-1]["state"] == "FINISHED"
    executor_dirs = list((cluster.root / "work" / apps[-1]["id"]).glob("*/stderr"))
    assert executor_dirs, f"the worker started no executor for {apps[-1]['id']}"


@pytest.fixture
def cluster_project(tmp_path: Path, mlflow_server: MlflowServer) -> Path:
    """The demo's raw data and a configuration that points at the MLflow server; returns the config file."""
    from jobs.demo.pipeline import prepare_workdir

    config = prepare_workdir(tmp_path / "project", n_customers=CUSTOMERS)
    config.mlflow.tracking_uri = mlflow_server.url
    # Artifacts go through the server too: nothing the driver writes to its own disk for MLflow.
    config.mlflow.artifact_location = "mlflow-artifacts:/featurelake"
    config.spark.conf = dict(SMALL_CLUSTER_CONF)
    path = Path(config.base_dir) / "featurelake.yaml"
    write_config(config, path)
    return path


def test_jobs_run_on_a_standalone_cluster(spark_cluster: SparkCluster, mlflow_server: MlflowServer,
                                          cluster_project: Path, tmp_path: Path):
    config = load_config(cluster_project, env={})
    elsewhere = tmp_path / "elsewhere"  # the driver's working directory: no project files here
    elsewhere.mkdir()

    # 1. feature tables
    submit(spark_cluster, "build_features", ["--config", str(cluster_project)], elsewhere)
    assert_ran_on_cluster(spark_cluster, "build_features")
    customers = pd.read_parquet(Path(config.source_root) / "raw" / "customers.parquet")
    profile = DeltaTable(config.table_path("customer_profile"))
    profile_rows = profile.to_pyarrow_table().to_pandas()
    assert set(profile_rows["customer_id"]) == set(customers["customer_id"])
    assert profile.metadata().configuration["featurelake.kind"] == "feature_table"
    spend = DeltaTable(config.table_path("customer_weekly_spend")).to_pyarrow_table().to_pandas()
    assert len(spend) > 0 and not spend.duplicated(["customer_id", "week_end"]).any()
    assert (Path(config.feast.repo_path) / "feature_store.yaml").is_file()
    assert_nothing_written(elsewhere)

    # 2. training: point-in-time training set on the cluster, run and model in the MLflow server
    train = json_output(submit(spark_cluster, "train", ["--config", str(cluster_project), "--json"], elsewhere))
    assert_ran_on_cluster(spark_cluster, "train")
    client = MlflowClient(tracking_uri=mlflow_server.url, registry_uri=mlflow_server.url)
    version = client.get_model_version(MODEL_NAME, str(train["model_version"]))
    assert version.run_id == train["run_id"]
    run = client.get_run(train["run_id"])
    assert run.data.metrics["roc_auc"] == pytest.approx(train["metrics"]["roc_auc"])
    assert list((mlflow_server.artifacts).rglob("MLmodel")), "the model was not stored through the server"

    # 3. promotion through Staging to Production (gates checked on the cluster)
    for stage in ("Staging", "Production"):
        decision = json_output(submit(spark_cluster, "promote", [
            "--config", str(cluster_project), "--model-name", MODEL_NAME, "--version", version.version,
            "--stage", stage, "--json"], elsewhere))
        assert decision["decision"] == "promoted", decision
    assert client.get_model_version(MODEL_NAME, version.version).current_stage == "Production"
    assert client.get_model_version_by_alias(MODEL_NAME, "champion").version == version.version
    events = DeltaTable(config.table_path("promotion_events")).to_pyarrow_table().to_pandas()
    assert sorted(events["decision"]) == ["promoted", "promoted"]

    # 4. batch inference with the Production model: spark_udf runs in the worker's executor
    entities = Path(config.source_root) / "raw" / "entities_to_score.parquet"
    customers[["customer_id"]].to_parquet(entities, index=False)
    submit(spark_cluster, "batch_inference", [
        "--config", str(cluster_project), "--input", str(entities),
        "--model-uri", f"models:/{MODEL_NAME}/Production", "--batch-id", "cluster-1"], elsewhere)
    assert_ran_on_cluster(spark_cluster, "batch_inference")
    predictions = DeltaTable(config.table_path("predictions")).to_pyarrow_table().to_pandas()
    assert sorted(predictions["customer_id"]) == sorted(customers["customer_id"])
    assert set(predictions["batch_id"]) == {"cluster-1"}
    assert set(predictions["model_version"].astype(str)) == {version.version}
    assert set(predictions["run_id"]) == {train["run_id"]}
    assert predictions["probability"].between(0, 1).all()
    assert set(predictions["prediction"]) <= {0.0, 1.0}
    assert_nothing_written(elsewhere)
