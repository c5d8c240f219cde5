"""Transition requests against the MLflow tracking server's registry (REST), not only SQLite: two
approvers racing on one request record and apply one decision; an approval after another version
was promoted is refused, recorded, and leaves the registry alone; rename goes through the server."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from cluster_services import MlflowServer
from featurestore.core.config import Config, resolve_paths
from featurestore.core.errors import ConflictError
from featurestore.delta_reader import session_reader
from inference import registry
from inference.governance.changes import Actor
from inference.governance.rename import rename_model
from inference.governance.requests import approve, get_request, request_transition
from inference.promotion import promote, read_events, transition
from inference.tracking import ensure_experiment

pytestmark = [pytest.mark.cluster, pytest.mark.slow]


@pytest.fixture
def server_project(tmp_path: Path, mlflow_server: MlflowServer) -> Config:
    config = resolve_paths(Config(warehouse="warehouse"), tmp_path)
    config.mlflow.tracking_uri = mlflow_server.url
    config.mlflow.artifact_location = "mlflow-artifacts:/governance"
    config.mlflow.experiment = f"governance-{tmp_path.name}"
    return config


def _version(config: Config, model: str, roc_auc: float) -> str:
    client = registry.mlflow_client(config)
    run = client.create_run(ensure_experiment(config))
    client.log_metric(run.info.run_id, "roc_auc", roc_auc)
    client.set_terminated(run.info.run_id)
    return str(client.create_model_version(model, source=f"{run.info.artifact_uri}/model",
                                           run_id=run.info.run_id).version)


def _stages(config: Config, model: str) -> dict[str, str]:
    return {str(v.version): v.current_stage for v in registry.search_versions(config, model)}


def test_requests_on_the_server_registry(spark, server_project):
    config = server_project
    model = f"served_{Path(config.base_dir).name}".replace("-", "_")
    registry.mlflow_client(config).create_registered_model(model)
    v1, v2, v3, v4 = (_version(config, model, auc) for auc in (0.7, 0.8, 0.9, 0.95))
    promote(spark, config, model, v1, "Production")

    # two approvers at once: one decision, one promotion
    request = request_transition(spark, config, model, v2, "Production", Actor("alice", "request"))
    barrier = threading.Barrier(2, timeout=300)
    outcomes: dict[str, object] = {}

    def run(user: str) -> None:
        barrier.wait()
        try:
            outcomes[user] = approve(spark, config, request.request_id, Actor(user, "request"))
        except ConflictError as exc:
            outcomes[user] = exc

    threads = [threading.Thread(target=run, args=(user,)) for user in ("bob", "carol")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    winners = [u for u, o in outcomes.items() if not isinstance(o, Exception)]
    assert len(winners) == 1, outcomes
    assert get_request(session_reader(spark, config), config, request.request_id).decided_by == winners[0]
    assert sorted(e.candidate_version for e in read_events(session_reader(spark, config), config, model)) == [1, 2]
    assert _stages(config, model) == {v1: "Archived", v2: "Production", v3: "None", v4: "None"}

    # another version promoted meanwhile: refused, recorded, registry unchanged
    late = request_transition(spark, config, model, v3, "Production", Actor("alice", "request"))
    promote(spark, config, model, v4, "Production")
    before = (_stages(config, model), dict(registry.get_registered_model(config, model).aliases))
    decision = approve(spark, config, late.request_id, Actor("bob", "request"))
    assert decision.request.status == "refused" and "version 4 is there now, version 2 was then" in decision.request.reason
    assert (_stages(config, model), dict(registry.get_registered_model(config, model).aliases)) == before

    # rename through the server, once nothing is in Staging or Production
    transition(config, model, v4, "Archived")
    result = rename_model(spark, config, model, model + "_renamed", Actor("ops", "rename"))
    assert result.registry_renamed and result.rows_renamed["model_requests"] == 2
    assert _stages(config, model + "_renamed")[v4] == "Archived"
