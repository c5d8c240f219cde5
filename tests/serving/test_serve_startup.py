"""`featurelake serve` refuses to start, with one clear line and the README's exit code, when it cannot serve."""

from __future__ import annotations

import copy
import os
import signal
import socket
import threading

import pytest
from serving_support import config_file

from featurestore.core.config import write_config
from featurestore.feast_repo import register_tables
from jobs import serve as serve_job
from jobs.demo.feature_tables import FEATURE_TABLES

pytestmark = pytest.mark.slow  # end to end: featurelake serve on loopback


def _serve(config_path: str, *args: str) -> int:
    """Run `featurelake serve` in this process; a server that starts after all is stopped (SIGTERM) and the
    test fails on its exit code 0 instead of hanging."""
    guard = threading.Timer(600, lambda: os.kill(os.getpid(), signal.SIGTERM))
    guard.start()
    try:
        return serve_job.main(["--config", config_path, "--port", "0", *args])
    finally:
        guard.cancel()


def test_a_model_uri_that_does_not_resolve_is_exit_3(serving_project, capsys):
    path = config_file(serving_project)
    assert _serve(path, "--model-uri", "models:/churn_model@nope") == 3
    assert _serve(path, "--model-uri", "models:/no_such_model/Production") == 3
    assert _serve(path, "--model-uri", "models:/churn_model/9") == 3
    err = capsys.readouterr().err
    assert "model 'churn_model' has no alias 'nope'" in err
    assert "model 'no_such_model' is not registered" in err and "has no version 9" in err


def test_bad_options_are_exit_2(serving_project, capsys):
    path = config_file(serving_project)
    assert _serve(path, "--model-uri", "churn_model") == 2
    assert _serve(path, "--model-uri", "models:/churn_model@champion", "--port", "70000") == 2
    assert _serve(path, "--model-uri", "models:/churn_model@champion", "--reload-interval", "-1") == 2
    assert _serve(path, "--model-uri", "models:/churn_model@champion", "--workers", "0") == 2
    err = capsys.readouterr().err
    assert "cannot parse model reference 'churn_model'" in err and "--port 70000" in err
    assert "--reload-interval -1" in err and "--workers 0: expected 1-64" in err


def _unmaterialized_project(serving_project, root):
    """The serving project's registry and tables with a Feast repository of its own, applied, never materialized."""
    config = copy.deepcopy(serving_project)
    config.feast.repo_path = str(root / "never_materialized")
    register_tables(config, FEATURE_TABLES)
    return config, str(write_config(config, root / "featurelake.yaml"))


def test_a_missing_online_store_file_is_exit_3_naming_it(serving_project, tmp_path, capsys):
    config, path = _unmaterialized_project(serving_project, tmp_path)
    store = tmp_path / "never_materialized" / "data" / "online_store.db"
    store.unlink()  # Feast's apply created it; it is gone now
    assert _serve(path, "--model-uri", "models:/churn_model@champion") == 3
    assert f"online store file {store} does not exist: run featurelake materialize first" in capsys.readouterr().err
    assert not store.exists()  # not created empty by the check


def test_feature_tables_never_materialized_are_exit_3(serving_project, tmp_path, capsys):
    config, path = _unmaterialized_project(serving_project, tmp_path)
    assert _serve(path, "--model-uri", "models:/churn_model@champion") == 3
    assert ("reads feature table 'customer_profile', which was never materialized into the online store"
            in capsys.readouterr().err)


def test_a_taken_port_is_exit_4(serving_project, capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        code = _serve(config_file(serving_project), "--model-uri", "models:/churn_model@champion", "--port", str(port))
    assert code == 4
    assert f"cannot listen on 127.0.0.1:{port}" in capsys.readouterr().err
