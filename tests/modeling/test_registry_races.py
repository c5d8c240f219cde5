"""Concurrent promotions leave exactly one Production version."""

from __future__ import annotations

import threading

import pytest
from mlflow.tracking import MlflowClient

from featurestore.core.config import Config, resolve_paths
from featurestore.core.errors import ConflictError
from inference.registry import transition, versions_in_stage


@pytest.fixture
def registry_config(tmp_path) -> Config:
    config = resolve_paths(Config(), tmp_path)
    client = MlflowClient(config.mlflow.tracking_uri, config.mlflow.tracking_uri)
    client.create_registered_model("race_model")
    for _ in range(4):
        client.create_model_version("race_model", source=str(tmp_path / "model"))
    return config


@pytest.mark.parametrize("round_", range(3))
def test_two_promotions_at_once_leave_exactly_one_production_version(registry_config, round_):
    barrier = threading.Barrier(2)
    outcomes: dict[str, str] = {}

    def promote(version: str) -> None:
        barrier.wait()
        try:
            transition(registry_config, "race_model", version, "Production")
            outcomes[version] = "promoted"
        except ConflictError:
            outcomes[version] = "conflict"

    threads = [threading.Thread(target=promote, args=(v,)) for v in ("2", "3")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    production = versions_in_stage(registry_config, "race_model", "Production")
    assert len(production) == 1
    winner = production[0].version
    assert str(winner) in ("2", "3")
    assert outcomes[str(winner)] == "promoted"
    assert set(outcomes) == {"2", "3"}


def test_keep_one_in_stage_reports_the_loser(registry_config):
    import warnings

    client = MlflowClient(registry_config.mlflow.tracking_uri, registry_config.mlflow.tracking_uri)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        client.transition_model_version_stage("race_model", "4", "Production")
        client.transition_model_version_stage("race_model", "1", "Production")  # a racer, no archiving
    from inference.registry import keep_one_in_stage

    with pytest.raises(ConflictError, match="version 4 in Production; version 1 was archived"):
        keep_one_in_stage(registry_config, "race_model", "Production", "1")
    assert [v.version for v in versions_in_stage(registry_config, "race_model", "Production")] in (["4"], [4])
