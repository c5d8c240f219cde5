"""`featurelake predict --incremental`: only new input rows are scored, each exactly once, across kills."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from inference_support import FEATURES, get_registry, scoring_rows

from featurestore.core.config import write_config
from inference.incremental import run_incremental_inference
from jobs import batch_inference

ROOT = Path(__file__).resolve().parents[2]
MODEL = "models:/lr_model/Production"   # version 1


@pytest.fixture(scope="module")
def setup(spark, tmp_path_factory):
    registry = get_registry(tmp_path_factory)
    root = tmp_path_factory.mktemp("incremental")
    return registry, root, str(write_config(registry.config, root / "featurelake.yaml"))


def _append(spark, path: Path, first: int, rows: int) -> None:
    """Append entities ``first`` .. ``first + rows - 1`` to the Delta input at ``path`` (one commit)."""
    pdf = scoring_rows(seed=first, rows=rows)
    pdf["id"] = np.arange(first, first + rows, dtype="int64")
    spark.createDataFrame(pdf).write.format("delta").mode("append").save(str(path))


def _scored(spark, registry, table: str) -> list[tuple[int, str]]:
    rows = spark.read.format("delta").load(registry.config.table_path(table)).select("id", "batch_id").collect()
    return sorted((r.id, r.batch_id) for r in rows)


def _expected_predictions(spark, path: Path, registry) -> dict[int, int]:
    pdf = spark.read.format("delta").load(str(path)).toPandas()
    return dict(zip(pdf["id"], registry.models[1].predict(pdf[FEATURES])))


def test_options_fit_together(setup):
    _, root, config_path = setup
    common = ["--config", config_path, "--input", "entities", "--model-uri", MODEL]
    assert batch_inference.main([*common, "--incremental"]) == 2                       # no --checkpoint
    assert batch_inference.main([*common, "--max-files-per-trigger", "1"]) == 2          # no --incremental
    assert batch_inference.main([*common, "--incremental", "false", "--max-files-per-trigger", "1"]) == 2
    parser = batch_inference.build_parser()
    assert parser.parse_args(["--input", "x", "--incremental"]).incremental is True
    assert parser.parse_args(["--input", "x", "--incremental", "True"]).incremental is True   # Data Factory's Bool
    assert parser.parse_args(["--input", "x", "--incremental", "False"]).incremental is False
    assert parser.parse_args(["--input", "x"]).incremental is False


def test_new_rows_only_and_a_replayed_micro_batch_is_not_scored_twice(spark, setup):
    registry, root, _ = setup
    path, checkpoint = root / "entities", root / "checkpoint"
    _append(spark, path, 0, 15)
    _append(spark, path, 15, 15)
    run = lambda: run_incremental_inference(spark, registry.config, str(path), MODEL, str(checkpoint),  # noqa: E731
                                            output_table="incr_preds", keys=["id"], max_files_per_trigger=1)
    first = run()
    assert first.rows_written == 30 and len(first.batches) >= 2 and first.model.version == 1
    scored = _scored(spark, registry, "incr_preds")
    assert [i for i, _ in scored] == list(range(30))
    predictions = spark.read.format("delta").load(registry.config.table_path("incr_preds")).toPandas()
    expected = _expected_predictions(spark, path, registry)
    assert all(int(p) == expected[i] for i, p in zip(predictions["id"], predictions["prediction"]))

    assert run().batches == []                                  # nothing new: nothing scored

    _append(spark, path, 30, 20)
    second = run()
    assert second.rows_written == 20 and [i for i, _ in _scored(spark, registry, "incr_preds")] == list(range(50))
    # A run killed after its last micro-batch's write but before the stream recorded it as done:
    # the checkpoint lacks that batch's commit mark, so the rerun scores the batch again.
    last = max(int(p.name) for p in (checkpoint / "commits").iterdir() if p.name.isdigit())
    for mark in (checkpoint / "commits" / str(last), checkpoint / "commits" / f".{last}.crc"):
        mark.unlink(missing_ok=True)
    replay = run()
    assert [b.batch_id for b in replay.batches] == [second.batches[-1].batch_id]
    assert replay.batches[0].rows_written == second.batches[-1].rows_written > 0
    assert [i for i, _ in _scored(spark, registry, "incr_preds")] == list(range(50))   # still once each


def _commits(table: Path) -> int:
    log = table / "_delta_log"
    return len(list(log.glob("*.json"))) if log.exists() else 0


@pytest.mark.slow
def test_sigkill_then_rerun_scores_every_row_exactly_once(spark, setup):
    registry, root, config_path = setup
    path, checkpoint = root / "killed_entities", root / "killed_checkpoint"
    for first in range(0, 60, 10):                              # 6 commits of 10 rows: several micro-batches
        _append(spark, path, first, 10)
    output = Path(registry.config.table_path("killed_preds"))
    command = [sys.executable, "-m", "jobs.cli", "--config", config_path, "predict", "--incremental",
               "--input", str(path), "--checkpoint", str(checkpoint), "--model-uri", MODEL, "--keys", "id",
               "--output-table", "killed_preds", "--max-files-per-trigger", "1"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    job = subprocess.Popen(command, cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 600
    while _commits(output) < 3 and job.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)                                         # the create and two micro-batches committed
    job.send_signal(signal.SIGKILL)
    assert job.wait() == -signal.SIGKILL, "the run ended before it could be killed"
    killed_at = len(_scored(spark, registry, "killed_preds"))
    assert 0 < killed_at < 60

    rerun = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True, timeout=900)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    ids = [i for i, _ in _scored(spark, registry, "killed_preds")]
    assert ids == list(range(60)), f"killed after {killed_at} rows: missing or twice: {sorted(set(ids) ^ set(range(60)))}"
