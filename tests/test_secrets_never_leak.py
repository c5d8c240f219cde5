"""Secrets given in configuration and environment never leave the process.

A real build (Delta + Feast) and a real training run (MLflow, SQLite store) run through the
jobs with a storage key and a SAS token in the Spark configuration, tracking credentials and
a token in the environment; then a training run against a tracking URI with ``user:password@``
fails. No secret may appear in what was logged (records and stderr), in error messages, in
the Delta tables (properties, comments, history, log files), in the MLflow store (params,
tags, descriptions, artifacts) or in the Feast repository.
"""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest

from featurestore.core.config import write_config
from featurestore.core.errors import DependencyUnavailableError
from inference.settings import TRAINING, LookupSettings
from tests.conftest import make_config
from tests.featurestore.sample_tables import T0, write_source

STORAGE_KEY = "U3RvcmFnZUtleS1zM2NyZXQtOTkx=="
SAS_TOKEN = "sv=2024&sig=SasS3cretSig4411"
TRACKING_PASSWORD = "trk-pass-7731-s3cret"
TRACKING_TOKEN = "trk-token-5529-s3cret"
URI_PASSWORD = "uri-pass-3307-s3cret"
SECRETS = [STORAGE_KEY, "SasS3cretSig4411", TRACKING_PASSWORD, TRACKING_TOKEN, URI_PASSWORD]

SPARK_SECRETS = {
    "spark.hadoop.fs.azure.account.key.acct.dfs.core.windows.net": STORAGE_KEY,
    "spark.hadoop.fs.azure.sas.raw.acct.blob.core.windows.net": SAS_TOKEN,
}
ENV_SECRETS = {
    "MLFLOW_TRACKING_USERNAME": "alice",
    "MLFLOW_TRACKING_PASSWORD": TRACKING_PASSWORD,
    "MLFLOW_TRACKING_TOKEN": TRACKING_TOKEN,
    "AZURE_STORAGE_KEY": STORAGE_KEY,
}
LOGGERS = ("featurelake", "featurestore", "inference", "jobs", "mlflow", "feast", "py4j")

DEFINITIONS = """
from featurestore.definitions import Source
from tests.featurestore.sample_tables import user_table

FEATURE_TABLES = [user_table(sources=[Source("events", "raw/events.parquet")])]
"""


def _leaks(text: str) -> list[str]:
    return [s for s in SECRETS if s in text]


def _files_with_secrets(root: Path, skip: set[Path]) -> list[str]:
    """Every file under ``root`` (but ``skip``) whose bytes contain a secret."""
    found = []
    for path in root.rglob("*"):
        if path.is_file() and path not in skip:
            data = path.read_bytes()
            found += [f"{path.relative_to(root)}: {s}" for s in SECRETS if s.encode() in data]
    return found


@pytest.fixture
def secret_project(spark, tmp_path, monkeypatch):
    """A tiny project whose configuration and environment carry secrets (restored afterwards)."""
    config = make_config(tmp_path, definitions=str(tmp_path / "defs.py"))
    (tmp_path / "defs.py").write_text(DEFINITIONS)
    write_source(tmp_path, [(u, T0, u % 4, float(u)) for u in range(1, 21)])
    labels = pd.DataFrame({"user_id": range(1, 21), "label": [u % 2 for u in range(1, 21)]})
    labels["label_time"] = pd.Series([T0 + timedelta(hours=1)] * 20).dt.tz_localize("UTC").astype("datetime64[us, UTC]")
    labels.to_parquet(tmp_path / "labels.parquet", index=False)
    config.spark.conf = dict(SPARK_SECRETS)
    training = TRAINING.of(config)
    training.model_name = "secret_model"
    training.label = "label"
    training.labels_path = str(tmp_path / "labels.parquet")
    training.lookups = [LookupSettings(table="user_activity", timestamp_lookup_key="label_time")]
    training.estimator_params = {"max_iter": "100"}
    training.test_fraction = 0.3
    config_file = write_config(config, tmp_path / "featurelake.yaml")
    for key, value in ENV_SECRETS.items():
        monkeypatch.setenv(key, value)
    for key, value in SPARK_SECRETS.items():  # the live session holds them too
        spark.conf.set(key, value)
    yield config, config_file
    for key in SPARK_SECRETS:
        spark.conf.unset(key)


def test_secrets_never_leak_from_build_and_training(spark, secret_project, caplog, capfd, monkeypatch):
    from mlflow.tracking import MlflowClient

    from jobs import build_features, tables, train
    from inference.training import train_model

    config, config_file = secret_project
    assert _leaks(config_file.read_text()), "the test must actually configure the secrets"
    import mlflow

    root_level = logging.getLogger().level
    for name in LOGGERS:  # the jobs replace the root handlers: listen on the loggers themselves
        logging.getLogger(name).addHandler(caplog.handler)
    caplog.handler.setLevel(logging.DEBUG)
    try:
        args = ["--config", str(config_file), "--log-level", "DEBUG"]
        assert build_features.main(args) == 0
        assert tables.main([*args, "history", "user_activity"]) == 0
        assert tables.main([*args, "describe", "user_activity", "--json"]) == 0
        built = capfd.readouterr()
        assert "user_activity" in built.out
        assert train.main([*args, "--json"]) == 0
        trained = capfd.readouterr()
        run_id = json.loads(trained.out[trained.out.index("{\n"):])["run_id"]

        # a tracking server with credentials in its URI, unreachable: the job fails, naming no password
        bad_uri = f"http://alice:{URI_PASSWORD}@127.0.0.1:9"
        monkeypatch.setenv("FEATURELAKE_MLFLOW_TRACKING_URI", bad_uri)
        assert train.main(args) == 5
        failed = capfd.readouterr()
        monkeypatch.delenv("FEATURELAKE_MLFLOW_TRACKING_URI")
        config.mlflow.tracking_uri = bad_uri
        with pytest.raises(DependencyUnavailableError) as error:
            train_model(spark, config)
    finally:
        for name in LOGGERS:
            logging.getLogger(name).removeHandler(caplog.handler)
        logging.getLogger().setLevel(root_level)
        store = make_config(Path(config.base_dir)).mlflow.tracking_uri
        mlflow.set_tracking_uri(store)
        mlflow.set_registry_uri(store)

    assert "alice:***@127.0.0.1:9" in failed.err  # the failure is reported, with the password masked
    assert _leaks(str(error.value)) == [] and "alice:***@" in str(error.value)
    assert _leaks(caplog.text) == []
    assert _leaks(built.out + built.err + trained.out + trained.err + failed.out + failed.err) == []

    # Delta: properties, comments, history (operationParameters) and the raw log files
    path = config.table_path("user_activity")
    detail = spark.sql(f"DESCRIBE DETAIL delta.`{path}`").first().asDict(recursive=True)
    history = [r.asDict(recursive=True) for r in spark.sql(f"DESCRIBE HISTORY delta.`{path}`").collect()]
    schema = spark.read.format("delta").load(path).schema.json()
    assert detail["properties"]["featurelake.owner"] == "growth@example.com" and len(history) >= 1
    assert _leaks(str(detail) + str(history) + schema) == []

    # MLflow: params, tags, registered model and version, every artifact and the store itself
    client = MlflowClient(store, store)
    run = client.get_run(run_id)
    assert run.data.params["label"] == "label"
    model = client.get_registered_model("secret_model")
    versions = client.search_model_versions("name = 'secret_model'")
    assert len(versions) == 1
    assert _leaks(json.dumps([run.data.params, run.data.tags, model.description, model.tags,
                              [(v.description, v.tags, v.source) for v in versions]], default=str)) == []
    artifacts = Path(client.download_artifacts(run_id, "", str(Path(config.base_dir) / "downloaded")))
    assert (artifacts / "training_set_spec.json").is_file()

    # nothing the product wrote (warehouse, Feast repo, MLflow store and artifacts) holds a secret
    root = Path(config.base_dir)
    assert (root / "feast_repo" / "feature_store.yaml").is_file() and (root / "mlflow.db").is_file()
    assert _files_with_secrets(root, skip=set()) == [f"featurelake.yaml: {s}" for s in SECRETS[:2]]  # the scan works
    assert _files_with_secrets(root, skip={root / "featurelake.yaml"}) == []
