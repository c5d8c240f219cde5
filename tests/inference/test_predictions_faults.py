"""Faults on the predictions table: concurrent batch writers and a job killed mid-write."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from delta.tables import DeltaTable
from pyspark.sql import functions as F

from inference.predictions import write_batch

SCHEMA = ("customer_id bigint, prediction double, model_name string, model_version bigint, run_id string, "
          "batch_id string, scored_at timestamp, scoring_date date")


def batch_frame(spark, batch_id: str, n: int):
    return spark.sql(
        f"SELECT CAST(id AS BIGINT) AS customer_id, CAST(id % 2 AS DOUBLE) AS prediction, "
        f"'churn_model' AS model_name, CAST(1 AS BIGINT) AS model_version, 'run1' AS run_id, "
        f"'{batch_id}' AS batch_id, TIMESTAMP'2026-11-01 00:00:00' AS scored_at, "
        f"DATE'2026-11-01' AS scoring_date FROM range({n})"
    )


def test_two_runs_appending_at_once_both_commit_without_loss_or_duplicates(spark, tmp_path):
    path = str(tmp_path / "predictions")
    write_batch(spark, batch_frame(spark, "b0", 5), path, "predictions", "churn_model", "b0", ["customer_id"])
    errors: list[BaseException] = []
    barrier = threading.Barrier(2)

    def run(batch_id: str) -> None:
        barrier.wait()
        try:
            write_batch(spark, batch_frame(spark, batch_id, 50), path, "predictions", "churn_model", batch_id,
                        ["customer_id"])
        except BaseException as exc:  # noqa: BLE001 - asserted below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(b,)) for b in ("b1", "b2")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    counts = {r["batch_id"]: r["count"] for r in spark.read.format("delta").load(path).groupBy("batch_id").count().collect()}
    assert counts == {"b0": 5, "b1": 50, "b2": 50}


def _failing(df):
    """``df`` whose rows raise while they are computed (a model that fails while scoring)."""
    return df.withColumn("prediction", F.expr("IF(customer_id >= 0, CAST(raise_error('scoring failed') AS DOUBLE), "
                                              "prediction)"))


def test_a_failing_first_batch_leaves_no_table_and_a_failing_later_one_leaves_the_table_as_it_was(spark, tmp_path):
    path = str(tmp_path / "predictions")
    with pytest.raises(Exception, match="scoring failed"):
        write_batch(spark, _failing(batch_frame(spark, "b1", 5)), path, "predictions", "churn_model", "b1",
                    ["customer_id"])
    assert not DeltaTable.isDeltaTable(spark, path) and not os.path.exists(path)

    write_batch(spark, batch_frame(spark, "b1", 5), path, "predictions", "churn_model", "b1", ["customer_id"])
    version = DeltaTable.forPath(spark, path).history(1).first()["version"]
    with pytest.raises(Exception, match="scoring failed"):
        write_batch(spark, _failing(batch_frame(spark, "b2", 5)), path, "predictions", "churn_model", "b2",
                    ["customer_id"])
    assert DeltaTable.forPath(spark, path).history(1).first()["version"] == version
    assert spark.read.format("delta").load(path).count() == 5


KILLED_WRITER = """
import sys, time
from pyspark.sql import functions as F
from pyspark.sql.types import DoubleType
from featurestore.core.config import Config
from featurestore.runtime.spark_session import get_spark
from inference.predictions import write_batch
sys.path.insert(0, sys.argv[2])
from test_predictions_faults import batch_frame

@F.udf(DoubleType())
def slow(value):
    time.sleep(0.2)
    return value

config = Config()
config.spark.master = "local[2]"
spark = get_spark(config)
df = batch_frame(spark, "b1", 60).repartition(4).withColumn("prediction", slow(F.col("prediction")))
write_batch(spark, df, sys.argv[1], "predictions", "churn_model", "b1", ["customer_id"])
"""


@pytest.mark.slow
def test_job_killed_mid_write_leaves_no_partial_batch_and_rerun_completes(spark, tmp_path):
    path = tmp_path / "predictions"
    write_batch(spark, batch_frame(spark, "b0", 5), str(path), "predictions", "churn_model", "b0", ["customer_id"])
    version = DeltaTable.forPath(spark, str(path)).history(1).first()["version"]
    files_before = set(path.rglob("*.parquet"))

    script = tmp_path / "writer.py"
    script.write_text(textwrap.dedent(KILLED_WRITER))
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    process = subprocess.Popen([sys.executable, str(script), str(path), str(Path(__file__).parent)], env=env, start_new_session=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline and set(path.rglob("*.parquet")) == files_before \
                and process.poll() is None:
            time.sleep(0.05)
        assert process.poll() is None, "the writer finished before it could be killed"
        assert set(path.rglob("*.parquet")) != files_before, "the writer never started writing"
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(30)

    assert DeltaTable.forPath(spark, str(path)).history(1).first()["version"] == version
    assert spark.read.format("delta").load(str(path)).filter("batch_id = 'b1'").count() == 0

    write_batch(spark, batch_frame(spark, "b1", 60), str(path), "predictions", "churn_model", "b1", ["customer_id"])
    write_batch(spark, batch_frame(spark, "b1", 60), str(path), "predictions", "churn_model", "b1", ["customer_id"])
    counts = {r["batch_id"]: r["count"] for r in spark.read.format("delta").load(str(path)).groupBy("batch_id").count().collect()}
    assert counts == {"b0": 5, "b1": 60}
