"""A cluster configuration: storage and MLflow URIs are kept as given, plain paths made absolute."""

from __future__ import annotations

import yaml

from featurestore.core.config import load_config


def test_uris_of_a_cluster_configuration_are_kept(tmp_path):
    path = tmp_path / "cluster.yaml"
    path.write_text(yaml.safe_dump({
        "warehouse": "dbfs:/featurelake/warehouse",
        "source_root": "abfss://lake@acct.dfs.core.windows.net/raw",
        "mlflow": {"tracking_uri": "http://mlflow.internal:5000",
                   "artifact_location": "mlflow-artifacts:/featurelake"},
        "feast": {"repo_path": "feast_repo"},
    }))
    config = load_config(path, env={})
    assert config.warehouse == "dbfs:/featurelake/warehouse"
    assert config.table_path("customer_profile") == "dbfs:/featurelake/warehouse/customer_profile"
    assert config.source_root == "abfss://lake@acct.dfs.core.windows.net/raw"
    assert config.mlflow.artifact_location == "mlflow-artifacts:/featurelake"
    assert config.feast.repo_path == str(tmp_path / "feast_repo")  # a plain path: made absolute


def test_plain_relative_paths_are_still_resolved(tmp_path):
    path = tmp_path / "local.yaml"
    path.write_text(yaml.safe_dump({"warehouse": "data/warehouse", "mlflow": {"artifact_location": "mlartifacts"}}))
    config = load_config(path, env={})
    assert config.warehouse == str(tmp_path / "data" / "warehouse")
    assert config.mlflow.artifact_location == str(tmp_path / "mlartifacts")
