"""One MLflow client and one mapping of MLflow's failures to featurelake's errors (inference.tracking)."""

from __future__ import annotations

import pytest
from mlflow.exceptions import MlflowException
from mlflow.protos import databricks_pb2

from featurestore.core.config import Config, resolve_paths
from featurestore.core.errors import (
    BadInputError, ConflictError, DependencyUnavailableError, NotFoundError,
)
from inference.tracking import client, mlflow_call


def _failing(code: str):
    def call():
        raise MlflowException("boom\nsecond line", error_code=getattr(databricks_pb2, code))
    return call


@pytest.mark.parametrize("code, error, message", [
    ("RESOURCE_DOES_NOT_EXIST", NotFoundError, "^model 'm' does not exist \\(boom\\)$"),
    ("NOT_FOUND", NotFoundError, "^model 'm' does not exist \\(boom\\)$"),  # a tracking server's 404
    ("INVALID_PARAMETER_VALUE", BadInputError, "^model 'm': boom$"),
    ("BAD_REQUEST", BadInputError, "^model 'm': boom$"),
    ("RESOURCE_ALREADY_EXISTS", ConflictError, "^model 'm': boom$"),
    ("INTERNAL_ERROR", DependencyUnavailableError, "^MLflow failed on model 'm': boom$"),
    ("TEMPORARILY_UNAVAILABLE", DependencyUnavailableError, "^MLflow failed on model 'm': boom$"),
])
def test_mlflow_failures_become_featurelake_errors_naming_the_thing(code, error, message):
    with pytest.raises(error, match=message):
        mlflow_call(_failing(code), "model 'm'")


def test_a_missing_thing_can_be_named_by_the_caller_and_a_result_passes_through():
    with pytest.raises(NotFoundError, match="^model 'm' has no version 9$"):
        mlflow_call(_failing("RESOURCE_DOES_NOT_EXIST"), "version 9 of model 'm'", missing="model 'm' has no version 9")
    assert mlflow_call(lambda: 42, "anything") == 42


def test_the_client_of_a_real_store(tmp_path):
    config = Config()
    config.mlflow.tracking_uri = "sqlite:///mlflow.db"
    config = resolve_paths(config, tmp_path)
    store = client(config)
    with pytest.raises(NotFoundError, match="^model 'nope' is not registered$"):
        mlflow_call(lambda: store.get_registered_model("nope"), "model 'nope'", missing="model 'nope' is not registered")
    config.mlflow.tracking_uri = "http://127.0.0.1:9"  # nothing listens: built without a call when unchecked
    assert client(config, check=False).tracking_uri == "http://127.0.0.1:9"
