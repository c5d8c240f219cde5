"""The scoring wrapper loads the registered model once per Python process, not once per Spark task."""

from __future__ import annotations

import os

import mlflow
import pandas as pd
import pytest
from inference_support import training_frame
from sklearn.linear_model import LogisticRegression

from inference import scoring_model


@pytest.fixture(scope="module")
def saved_models(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cached-models")
    X, y = training_frame(seed=3)
    paths = []
    for i in range(scoring_model.CACHE_SIZE + 1):
        path = folder / f"m{i}"
        mlflow.sklearn.save_model(LogisticRegression(C=1.0 + i).fit(X, y), str(path), serialization_format="pickle")
        paths.append(str(path))
    return paths


def test_load_once_returns_the_same_model_and_stays_bounded(saved_models):
    first = scoring_model.load_once(saved_models[0], "sklearn")
    assert scoring_model.load_once(saved_models[0], "sklearn") is first
    others = [scoring_model.load_once(path, "sklearn") for path in saved_models[1:]]
    assert all(model is not first for model in others)
    assert len(scoring_model._loaded) == scoring_model.CACHE_SIZE
    # the least recently used model (the first) was dropped: loading it again gives a new object
    assert scoring_model.load_once(saved_models[0], "sklearn") is not first


def test_each_spark_python_worker_loads_the_model_once_across_tasks(spark, saved_models):
    path = saved_models[0]

    def model_identity(batches):
        for batch in batches:
            model = scoring_model.load_once(path, "sklearn")
            yield pd.DataFrame({"pid": [os.getpid()], "model_id": [id(model)], "rows": [len(batch)]})

    # 8 tasks on local[2]: each of the (at most 2) reused Python workers runs several of them
    rows = spark.range(0, 800, numPartitions=8).mapInPandas(model_identity, "pid long, model_id long, rows long")
    seen = rows.toPandas()
    assert seen["rows"].sum() == 800
    per_worker = seen.groupby("pid")["model_id"].nunique()
    assert (per_worker == 1).all(), seen
    assert len(seen) > len(per_worker)  # some worker ran more than one task, and reused its model


def test_python_workers_are_forked_from_the_daemon_that_imported_the_scoring_stack(spark):
    """The session (tests/conftest.py, like predict's) forks its Python workers from
    inference.worker_daemon, which imported pandas, scikit-learn, MLflow and skops before forking."""

    def parent_of_worker(batches):
        import sys as worker_sys

        for _ in batches:
            with open(f"/proc/{os.getppid()}/cmdline", "rb") as cmdline:
                parent = cmdline.read().split(b"\0")
            yield pd.DataFrame({"parent": [" ".join(p.decode() for p in parent if p)],
                                "skops": ["skops.io" in worker_sys.modules]})

    seen = spark.range(0, 2, numPartitions=2).mapInPandas(parent_of_worker, "parent string, skops boolean").toPandas()
    assert seen["parent"].str.contains(" -m inference.worker_daemon").all(), seen.to_dict()
    assert seen["skops"].all(), seen.to_dict()
