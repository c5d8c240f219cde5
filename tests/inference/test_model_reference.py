"""Model references: parsing, and resolution against a real SQLite MLflow registry."""

from __future__ import annotations

import copy
import os

import pytest
from inference_support import get_registry

from featurestore.core.errors import BadInputError, DependencyUnavailableError, NotFoundError
from inference.model_reference import ModelReference, parse_model_uri, resolve_model
from inference.tracking import HTTP_ENV_DEFAULTS


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    return get_registry(tmp_path_factory)


@pytest.mark.parametrize("uri, expected", [
    ("models:/churn_model/Production", ModelReference("churn_model", stage="Production")),
    ("models:/churn_model/production", ModelReference("churn_model", stage="Production")),
    ("models:/churn_model/Staging", ModelReference("churn_model", stage="Staging")),
    ("models:/churn_model@champion", ModelReference("churn_model", alias="champion")),
    ("models:/churn_model/3", ModelReference("churn_model", version=3)),
    ("models:/churn_model/latest", ModelReference("churn_model", latest=True)),
])
def test_parse_accepted_forms(uri, expected):
    ref = parse_model_uri(uri)
    assert ref == expected
    assert parse_model_uri(str(ref)) == ref


@pytest.mark.parametrize("uri", [
    "churn_model", "models:/", "models:/churn_model", "models:/churn_model/Prod", "runs:/abc/model",
    "models:/churn_model/0", "models:/churn model/Production", "models:/a/b/c", "models:/m@", "",
])
def test_parse_refuses_bad_references(uri):
    with pytest.raises(BadInputError, match="model reference"):
        parse_model_uri(uri)


def test_resolve_stage_alias_version_latest(registry):
    production = resolve_model(registry.config, "models:/lr_model/Production")
    assert (production.version, production.run_id) == (1, registry.run_ids[1])
    assert production.uri == "models:/lr_model/1"
    assert resolve_model(registry.config, "models:/lr_model/Staging").version == 2
    champion = resolve_model(registry.config, "models:/lr_model@champion")
    assert champion.version == 2 and "champion" in champion.aliases
    assert resolve_model(registry.config, "models:/lr_model/1").version == 1
    assert resolve_model(registry.config, "models:/lr_model/latest").version == 2
    assert resolve_model(registry.config, ModelReference("lr_model", stage="Production")).version == 1


@pytest.mark.parametrize("uri, message", [
    ("models:/no_such_model/Production", "^model 'no_such_model' is not registered in the model registry$"),
    ("models:/no_such_model/latest", "^model 'no_such_model' is not registered in the model registry$"),
    ("models:/idle_model/Production", "^model 'idle_model' has no version in stage Production$"),
    ("models:/lr_model/Archived", "^model 'lr_model' has no version in stage Archived$"),
    ("models:/lr_model@nobody", "^model 'lr_model' has no alias 'nobody'$"),
    ("models:/lr_model/99", "^model 'lr_model' has no version 99$"),
])
def test_resolve_missing_things_are_not_found(registry, uri, message):
    with pytest.raises(NotFoundError, match=message):
        resolve_model(registry.config, uri)


def test_unreachable_tracking_server_is_unavailable_after_the_bounded_retries(registry, monkeypatch):
    for key in HTTP_ENV_DEFAULTS:  # unset for this test, restored afterwards
        monkeypatch.setenv(key, "")
        monkeypatch.delenv(key)
    config = copy.deepcopy(registry.config)
    config.mlflow.tracking_uri = "http://127.0.0.1:9"
    with pytest.raises(DependencyUnavailableError, match="MLflow tracking store http://127.0.0.1:9 cannot be used"):
        resolve_model(config, "models:/lr_model/Production")
    assert {key: os.environ.get(key) for key in HTTP_ENV_DEFAULTS} == HTTP_ENV_DEFAULTS
