"""Helpers of the governance tests: a project with a real MLflow SQLite registry (created once per
test module: its migrations take seconds), a fresh model per test, versions with hand-logged
metrics (no training), and the registry's state in one comparable value."""

from __future__ import annotations

import itertools
from pathlib import Path

from featurestore.core.config import Config, resolve_paths
from inference import registry
from inference.governance.changes import Actor
from inference.tracking import ensure_experiment

_NUMBERS = itertools.count(1)


def make_project(root: Path) -> Config:
    """A configuration whose warehouse and MLflow store live under ``root``."""
    config = Config(warehouse="warehouse", source_root=".")
    config.spark.master = "local[2]"
    config.mlflow.tracking_uri = "sqlite:///mlflow.db"
    return resolve_paths(config, root)


def new_model(config: Config, **tags: str) -> str:
    """Register a model with a name no other test uses; return the name."""
    name = f"gov_model_{next(_NUMBERS)}"
    registry.mlflow_client(config).create_registered_model(name, tags=tags)
    return name


def new_version(config: Config, model: str, **metrics: float) -> str:
    """Register a new version of ``model`` whose run logged ``metrics``; return its number."""
    client = registry.mlflow_client(config)
    run = client.create_run(ensure_experiment(config))
    for key, value in metrics.items():
        client.log_metric(run.info.run_id, key, value)
    client.set_terminated(run.info.run_id)
    return str(client.create_model_version(model, source=config.base_dir + "/model", run_id=run.info.run_id).version)


def state(config: Config, model: str) -> tuple[dict[str, str], dict[str, str]]:
    """(alias -> version, version -> stage) of ``model``."""
    aliases = {k: str(v) for k, v in registry.get_registered_model(config, model).aliases.items()}
    return aliases, {str(v.version): v.current_stage for v in registry.search_versions(config, model)}


def actor(config: Config, user: str, source: str = "request") -> Actor:
    """The actor ``user`` acting through ``source``."""
    return Actor.of(config, source, user)


def logged_version(config: Config, model: str, *, c: float = 1.0, columns: tuple[str, ...] = ("a", "b"),
                   delta_version: int = 0, roc_auc: float = 0.8) -> str:
    """Fit a tiny logistic regression on ``columns``, log it with a signature, params, a metric and a
    training-set spec, and register it with featurelake's :func:`inference.logged_models.register_version`."""
    import mlflow
    import numpy as np
    import pandas as pd
    import skops.io
    from mlflow.models import infer_signature
    from sklearn.linear_model import LogisticRegression

    from featurestore.training_set import SPEC_ARTIFACT, TrainingSetSpec
    from inference.logged_models import register_version
    from inference.tracking import configure_mlflow

    configure_mlflow(config)
    x = pd.DataFrame({name: np.arange(20, dtype=float) * (i + 1) for i, name in enumerate(columns)})
    y = (x[columns[0]] > 9).astype(int)
    estimator = LogisticRegression(C=c).fit(x, y)
    spec = TrainingSetSpec("churned", "label_time", ["customer_id"], list(columns), [
        {"table": "profile", "path": config.table_path("profile"), "features": list(columns),
         "lookup_keys": ["customer_id"], "timestamp_lookup_key": "label_time", "ttl_seconds": None,
         "delta_version": delta_version}])
    with mlflow.start_run(experiment_id=ensure_experiment(config)) as run:
        mlflow.log_params({"C": c, "n_features": len(columns)})
        mlflow.log_metric("roc_auc", roc_auc)
        mlflow.log_text(spec.to_json(), SPEC_ARTIFACT)
        trusted = skops.io.get_untrusted_types(data=skops.io.dumps(estimator))
        info = mlflow.sklearn.log_model(estimator, name="model", signature=infer_signature(x, estimator.predict(x)),
                                        skops_trusted_types=trusted or None, pip_requirements=["scikit-learn"])
    return register_version(config, model, info.model_uri, run.info.run_id, spec, description=f"C={c}")
