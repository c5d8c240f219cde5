"""Shared helpers of the inference tests: a real SQLite MLflow registry with small sklearn models.

The registry is built once per test session (memoised here, since fixtures imported into
several modules would otherwise be built once per module)."""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from featurestore.core.config import Config, resolve_paths

FEATURES = ["x1", "x2", "x3", "n"]


def training_frame(seed: int, rows: int = 200) -> tuple[pd.DataFrame, np.ndarray]:
    """Deterministic training data: three doubles and one long, binary label."""
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({
        "x1": rng.normal(size=rows), "x2": rng.normal(size=rows), "x3": rng.normal(size=rows),
        "n": rng.integers(0, 10, rows).astype("int64"),
    })
    y = ((X["x1"] - 0.5 * X["x2"] + 0.1 * X["n"] + rng.normal(scale=0.5, size=rows)) > 0.5).astype("int64")
    return X, y.to_numpy()


def make_config(root: Path) -> Config:
    """A configuration whose warehouse and MLflow store live under ``root``."""
    config = Config(warehouse="warehouse", source_root=".")
    config.spark.master = "local[2]"
    config.mlflow.tracking_uri = "sqlite:///mlflow.db"
    return resolve_paths(config, root)


def log_model(config, name: str, model, X: pd.DataFrame, spec: dict | None = None,
              metadata: dict | None = None) -> tuple[str, int]:
    """Log ``model`` (fitted) with a signature (and MLmodel ``metadata``), register it under ``name``;
    return (run id, version)."""
    import mlflow
    from mlflow.models import infer_signature
    from skops.io import dumps, get_untrusted_types  # our own test models: safe to trust

    from inference.tracking import client as mlflow_client

    client = mlflow_client(config)
    experiment = mlflow.get_experiment_by_name("inference-tests")
    experiment_id = experiment.experiment_id if experiment else mlflow.create_experiment(
        "inference-tests", artifact_location=Path(config.mlflow.artifact_location).as_uri())
    with mlflow.start_run(experiment_id=experiment_id) as run:
        info = mlflow.sklearn.log_model(model, name="model", signature=infer_signature(X, model.predict(X)),
                                 pip_requirements=["scikit-learn", "mlflow"],
                                 skops_trusted_types=get_untrusted_types(data=dumps(model)) or None,
                                 metadata=metadata)
        if spec is not None:
            mlflow.log_text(json.dumps(spec), "training_set_spec.json")
    version = client.create_model_version(name, info.model_uri, run.info.run_id)
    return run.info.run_id, int(version.version)


@dataclass
class Registry:
    """The registry fixture: configuration and the fitted models by version."""

    config: object
    models: dict[int, object]
    run_ids: dict[int, str]
    name: str = "lr_model"


_REGISTRY: list[Registry] = []


def get_registry(tmp_path_factory) -> Registry:
    """``lr_model``: v1 Production, v2 Staging + alias ``champion``; ``idle_model``: v1, no stage."""
    if _REGISTRY:
        return _REGISTRY[0]
    from sklearn.linear_model import LogisticRegression

    from inference.tracking import client as mlflow_client

    root: Path = tmp_path_factory.mktemp("registry")
    config = make_config(root)
    client = mlflow_client(config)
    client.create_registered_model("lr_model")
    client.create_registered_model("idle_model")
    models, run_ids = {}, {}
    for version_seed, C in ((1, 1.0), (2, 0.05)):
        X, y = training_frame(version_seed)
        model = LogisticRegression(C=C).fit(X, y)
        run_id, version = log_model(config, "lr_model", model, X)
        models[version], run_ids[version] = model, run_id
    X, y = training_frame(3)
    log_model(config, "idle_model", LogisticRegression().fit(X, y), X)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        client.transition_model_version_stage("lr_model", "1", "Production")
        client.transition_model_version_stage("lr_model", "2", "Staging")
    client.set_registered_model_alias("lr_model", "champion", "2")
    _REGISTRY.append(Registry(config, models, run_ids))
    return _REGISTRY[0]


def scoring_rows(seed: int = 11, rows: int = 50) -> pd.DataFrame:
    """Rows to score: an ``id`` key plus the model inputs."""
    X, _ = training_frame(seed, rows)
    X.insert(0, "id", np.arange(rows, dtype="int64"))
    return X
