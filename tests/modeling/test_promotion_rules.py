"""Promotion rules on versions with hand-logged metrics (real MLflow on SQLite, no training):
demotion, default aliases, alias validation, NaN metrics and the recorded reasons."""

from __future__ import annotations

import pytest
from pit_data import make_config

from featurestore.delta_reader import DeltaReader
from featurestore.core.errors import BadInputError, ConflictError
from inference import registry
from inference.promotion import promote, read_events, transition
from inference.settings import PROMOTION
from inference.tracking import ensure_experiment

MODEL = "gated_model"


@pytest.fixture
def gated(tmp_path):
    """An empty registered model in a fresh project; promotion needs only roc_auc (no thresholds)."""
    config = make_config(tmp_path)
    registry.mlflow_client(config).create_registered_model(MODEL)
    return config


def _version(config, **metrics: float) -> str:
    """Register a new version whose run logged ``metrics``; return its number."""
    client = registry.mlflow_client(config)
    run = client.create_run(ensure_experiment(config))
    for key, value in metrics.items():
        client.log_metric(run.info.run_id, key, value)
    client.set_terminated(run.info.run_id)
    return str(client.create_model_version(MODEL, source=config.base_dir + "/model", run_id=run.info.run_id).version)


def _state(config) -> tuple[dict[str, str], dict[str, str]]:
    """(alias -> version, version -> stage) of the model."""
    aliases = {k: str(v) for k, v in registry.get_registered_model(config, MODEL).aliases.items()}
    return aliases, {str(v.version): v.current_stage for v in registry.search_versions(config, MODEL)}


def _events(spark, config) -> list[tuple]:
    events = read_events(DeltaReader(lambda: spark), config, MODEL)
    return [(e.candidate_version, e.stage, e.decision) for e in reversed(events)]


def test_promote_refuses_to_demote_the_production_version(spark, gated):
    v1 = _version(gated, roc_auc=0.8)
    assert promote(spark, gated, MODEL, v1, "Production").promoted
    with pytest.raises(ConflictError) as info:
        promote(spark, gated, MODEL, v1, "Staging")
    assert all(word in str(info.value) for word in (MODEL, f"version {v1}", "Production", "models transition"))
    assert _state(gated) == ({"champion": v1}, {v1: "Production"})
    assert _events(spark, gated) == [(1, "Production", "promoted")]


def test_default_aliases_leave_the_versions_promote_moves_out_of_their_stage(spark, gated):
    v1, v2, v3 = _version(gated, roc_auc=0.7), _version(gated, roc_auc=0.8), _version(gated, roc_auc=0.9)
    promote(spark, gated, MODEL, v1, "Production")
    promote(spark, gated, MODEL, v2, "Production", alias=None)          # v1 archived: champion goes
    assert _state(gated) == ({}, {v1: "Archived", v2: "Production", v3: "None"})
    promote(spark, gated, MODEL, v3, "Production", alias="best")        # custom aliases are the caller's
    assert _state(gated) == ({"best": v3}, {v1: "Archived", v2: "Archived", v3: "Production"})
    v4, v5 = _version(gated, roc_auc=0.91), _version(gated, roc_auc=0.92)
    promote(spark, gated, MODEL, v4, "Staging")
    promote(spark, gated, MODEL, v5, "Staging", alias=None)             # v4 archived: challenger goes
    aliases, stages = _state(gated)
    assert aliases == {"best": v3} and stages[v4] == "Archived" and stages[v5] == "Staging"
    promote(spark, gated, MODEL, v4, "Staging")                         # back to Staging, challenger on it
    promote(spark, gated, MODEL, v4, "Production")                      # champion moves, challenger goes
    assert _state(gated)[0] == {"best": v3, "champion": v4}


def test_invalid_alias_is_refused_before_any_registry_change(spark, gated):
    v1, v2 = _version(gated, roc_auc=0.7), _version(gated, roc_auc=0.8)
    promote(spark, gated, MODEL, v1, "Production")
    before = _state(gated)
    with pytest.raises(BadInputError) as info:
        promote(spark, gated, MODEL, v2, "Production", alias="champ-ion")
    assert "champ-ion" in str(info.value) and MODEL in str(info.value)
    assert _state(gated) == before
    assert _events(spark, gated) == [(1, "Production", "promoted")]


def test_reason_states_what_the_candidate_was_compared_with(spark, gated):
    v1, v2 = _version(gated, roc_auc=0.8), _version(gated, roc_auc=0.7)
    first = promote(spark, gated, MODEL, v1, "Production")
    assert first.reason == "no Production version to beat"
    staged = promote(spark, gated, MODEL, v2, "Staging")           # v1 is in Production: not compared
    assert staged.promoted and staged.reason == "Staging: no comparison with Production is made"
    v3, v4 = _version(gated, accuracy_score=0.9), _version(gated, roc_auc=0.6)
    registry.transition(gated, MODEL, v3, "Production")             # an incumbent without the gate metric
    PROMOTION.of(gated).thresholds = {"roc_auc": ">= 0.5"}
    passed = promote(spark, gated, MODEL, v4, "Production")        # does not block: stated in the reason
    assert passed.promoted and passed.incumbent_version == int(v3) and passed.incumbent_value is None
    assert passed.reason == f"thresholds passed; Production version {v3} has no 'roc_auc': comparison skipped"
    reasons = [e.reason for e in reversed(read_events(DeltaReader(lambda: spark), gated, MODEL))]
    assert reasons == [first.reason, staged.reason, passed.reason]


def test_nan_gate_metric_fails_the_candidate_and_counts_as_missing_for_the_incumbent(spark, gated):
    nan = float("nan")
    v1, v2 = _version(gated, roc_auc=nan), _version(gated, roc_auc=0.9)
    for stage in ("Production", "Staging"):                          # no threshold covers roc_auc
        rejected = promote(spark, gated, MODEL, v1, stage)
        assert not rejected.promoted and rejected.reason == f"gate metric 'roc_auc' of version {v1} is NaN"
    assert _state(gated) == ({}, {v1: "None", v2: "None"})
    registry.transition(gated, MODEL, v1, "Production")              # a NaN Production version...
    passed = promote(spark, gated, MODEL, v2, "Production")        # ...does not block every candidate
    assert passed.promoted and passed.incumbent_version == int(v1)
    assert passed.reason == f"Production version {v1} has a NaN 'roc_auc': comparison skipped"
    assert _state(gated) == ({"champion": v2}, {v1: "Archived", v2: "Production"})


def test_models_events_of_an_unknown_model_is_not_found(spark, gated, capfd):
    from featurestore.core.config import write_config
    from jobs import models as models_job

    path = write_config(gated, gated.base_dir + "/featurelake.yaml")
    assert models_job.main(["--config", str(path), "events", "nosuch_model"]) == 3
    assert "nosuch_model" in capfd.readouterr().err
    assert models_job.main(["--config", str(path), "events", MODEL]) == 0


def test_a_transition_takes_the_default_aliases_off_the_versions_it_moves_out_of_their_stage(spark, gated):
    v1, v2 = _version(gated, roc_auc=0.7), _version(gated, roc_auc=0.8)
    promote(spark, gated, MODEL, v1, "Production")
    promote(spark, gated, MODEL, v2, "Staging")
    assert _state(gated) == ({"champion": v1, "challenger": v2}, {v1: "Production", v2: "Staging"})
    transition(gated, MODEL, v2, "Staging")      # no move: the aliases stay
    assert _state(gated)[0] == {"champion": v1, "challenger": v2}
    transition(gated, MODEL, v2, "Production")   # no gates; v1 archived, neither alias follows
    assert _state(gated) == ({}, {v1: "Archived", v2: "Production"})


def test_a_default_alias_set_by_hand_leaves_a_version_moved_out_of_the_other_stage(spark, gated):
    v1, v2 = _version(gated, roc_auc=0.7), _version(gated, roc_auc=0.8)
    promote(spark, gated, MODEL, v1, "Production")
    promote(spark, gated, MODEL, v2, "Staging")
    registry.set_alias(gated, MODEL, "champion", v2)   # by hand, on the Staging version
    transition(gated, MODEL, v2, "Archived")
    assert _state(gated) == ({}, {v1: "Production", v2: "Archived"})
