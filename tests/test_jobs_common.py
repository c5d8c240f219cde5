"""The jobs' shared wrapper: exit codes per error type, secrets masked in what is logged."""

import argparse
import json
import logging
import os
import subprocess
import sys

import pytest

from featurestore.core.errors import BadInputError, DependencyUnavailableError, NotFoundError
from jobs.common import job_parser, run_job, run_job_without_config


def _args(tmp_path):
    config = tmp_path / "featurelake.yaml"
    config.write_text("warehouse: wh\n")
    return argparse.Namespace(config=str(config), log_level="INFO")


@pytest.mark.parametrize("error, code", [
    (BadInputError("bad"), 2), (NotFoundError("missing"), 3), (DependencyUnavailableError("down"), 5),
    (RuntimeError("boom"), 1),
])
def test_errors_map_to_documented_exit_codes(tmp_path, error, code):
    def body(args, config):
        raise error

    assert run_job(body, _args(tmp_path)) == code


def test_success_is_zero(tmp_path):
    assert run_job(lambda args, config: None, _args(tmp_path)) == 0


def test_a_job_draws_no_mlflow_download_progress_bar(tmp_path, capfd, monkeypatch):
    from mlflow.artifacts import download_artifacts

    monkeypatch.delenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", raising=False)
    model_folder = tmp_path / "model"
    model_folder.mkdir()
    for name in ("MLmodel", "model.skops", "requirements.txt"):
        (model_folder / name).write_text(name)

    def body(args, config):
        download_artifacts(artifact_uri=str(model_folder), dst_path=str(tmp_path / "downloaded"))

    assert run_job(body, _args(tmp_path)) == 0
    downloaded = tmp_path / "downloaded" / "model"
    assert sorted(p.name for p in downloaded.iterdir()) == ["MLmodel", "model.skops", "requirements.txt"]
    assert "Downloading artifacts" not in capfd.readouterr().err


@pytest.mark.parametrize("error, code", [(None, 0), (DependencyUnavailableError("no java"), 5), (OSError("full"), 1)])
def test_a_job_without_configuration_maps_its_outcome_the_same_way(error, code):
    def body(args):
        if error is not None:
            raise error

    args = job_parser("featurelake warmup", "no config", with_config=False).parse_args([])
    assert not hasattr(args, "config")
    assert run_job_without_config(body, args) == code


@pytest.mark.parametrize("error", [
    DependencyUnavailableError("MLflow at http://admin:hunter2pw@mlflow:5000 cannot be used"),
    RuntimeError("cannot reach https://admin:hunter2pw@store/x?sig=hunter2pw"),
])
def test_secrets_in_errors_never_reach_the_log(tmp_path, caplog, error):
    def body(args, config):
        raise error

    logging.getLogger("featurelake").addHandler(caplog.handler)
    try:
        run_job(body, _args(tmp_path))
    finally:
        logging.getLogger("featurelake").removeHandler(caplog.handler)
    assert "admin:***@" in caplog.text
    assert "hunter2pw" not in caplog.text


def test_secret_values_from_environment_and_config_are_masked_in_every_record(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("MY_SERVICE_TOKEN", "env-t0ken-99887766")
    config = tmp_path / "featurelake.yaml"
    config.write_text("spark:\n  conf: {spark.hadoop.fs.azure.account.key.a.dfs.core.windows.net: conf-k3y-11223344}\n")

    def body(args, config):
        logging.getLogger("modeling.anything").info("using env-t0ken-99887766 and conf-k3y-11223344")
        raise RuntimeError("failed with conf-k3y-11223344")

    assert run_job(body, argparse.Namespace(config=str(config), log_level="INFO")) == 1
    err = capsys.readouterr().err
    assert "using *** and ***" in err and "failed with ***" in err
    assert "env-t0ken-99887766" not in err and "conf-k3y-11223344" not in err


def test_exit_process_ends_with_the_code_after_atexit_handlers_and_flushed_output():
    script = ("import atexit, sys; from jobs.common import exit_process; "
              "atexit.register(lambda: print('atexit ran')); sys.stdout.write('buffered '); exit_process(3)")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 3, done.stderr
    assert done.stdout == "buffered atexit ran\n"


def test_json_out_replaces_the_file_whole_or_not_at_all(tmp_path):
    from jobs.common import write_json_file

    target = tmp_path / "result.json"
    write_json_file(target, {"run_id": "r1", "metrics": {"roc_auc": 0.75}})
    assert json.loads(target.read_text()) == {"run_id": "r1", "metrics": {"roc_auc": 0.75}}
    umask = os.umask(0)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask  # an ordinary file, not a private temporary one

    circular: dict = {"run_id": "r2"}
    circular["self"] = circular
    with pytest.raises(ValueError, match="Circular reference"):
        write_json_file(target, circular)  # fails half-way through the document
    assert json.loads(target.read_text())["run_id"] == "r1"  # the previous document, intact
    assert [p.name for p in tmp_path.iterdir()] == ["result.json"]  # no partial file left behind


def test_json_out_in_a_missing_folder_is_refused_before_the_job_runs(tmp_path, capsys):
    ran = []
    args = _args(tmp_path)
    args.json_out = str(tmp_path / "missing" / "result.json")
    assert run_job(lambda args, config: ran.append(True), args) == 2
    assert ran == []
    assert f"--json-out {args.json_out}: not a file in an existing folder" in capsys.readouterr().err


def test_a_command_writes_to_json_out_what_json_prints(tmp_path, capsys):
    from featurestore.core.config import load_config
    from inference.tracking import client as mlflow_client
    from jobs import models

    config = tmp_path / "featurelake.yaml"
    config.write_text("mlflow:\n  tracking_uri: sqlite:///mlflow.db\n")
    mlflow_client(load_config(config, env={})).create_registered_model("price_model", description="monthly prices")
    capsys.readouterr()
    out = tmp_path / "models.json"
    assert models.main(["--config", str(config), "list", "--json", "--json-out", str(out)]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert json.loads(out.read_text()) == printed
    assert [(m["name"], m["description"], m["versions"]) for m in printed] == [("price_model", "monthly prices", [])]

    out.unlink()
    assert models.main(["--config", str(config), "list", "--json-out", str(out)]) == 0
    assert capsys.readouterr().out.startswith("price_model  (aliases: -)  monthly prices")  # text, as without
    assert json.loads(out.read_text()) == printed
