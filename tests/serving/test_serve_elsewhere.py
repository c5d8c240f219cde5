"""The served model runs where MLflow models run (`mlflow models serve`), and `feast serve` on the generated
repository answers what `featurelake online-features` prints."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys

import pytest
from serving_support import config_file, free_port, post_json, stop_process, wait_until_answering

from jobs import online_features as online_job
from jobs import serve as serve_job

pytestmark = pytest.mark.slow  # end to end: featurelake serve on loopback

FEATURES = ["txn_count_7d", "spend_7d", "avg_amount_7d", "days_since_last_txn"]
KEYS = [1, 2, 60, 999_999]


def test_saved_serving_model_answers_under_mlflow_models_serve(serving_project, server, tmp_path, capsys):
    folder = tmp_path / "churn-serving"
    assert serve_job.main(["--config", config_file(serving_project), "--model-uri", "models:/churn_model@champion",
                           "--save-to", str(folder)]) == 0
    assert "saved the serving model of churn_model version 1" in capsys.readouterr().out
    assert (folder / "MLmodel").is_file() and (folder / "code" / "inference" / "serving_model.py").is_file()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # the model's own code folder is used
    env["SERVING_MODEL_CONFIG"] = json.dumps({"feast_repo_path": serving_project.feast.repo_path})
    log = tmp_path / "mlflow-serve.log"
    with open(log, "wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "mlflow", "models", "serve", "-m", str(folder),
                                    "--env-manager", "local", "-h", "127.0.0.1", "-p", str(port)],
                                   stdout=out, stderr=subprocess.STDOUT, env=env, cwd=tmp_path)
    try:
        wait_until_answering(process, port, "/ping", log)
        payload = {"dataframe_split": {"columns": ["customer_id"], "data": [[k] for k in KEYS]}}
        theirs = post_json(port, "/invocations", payload)
        assert theirs.status == 200, theirs.body
        ours = server.score(payload).json()["predictions"]
        for mine, other in zip(ours, theirs.json()["predictions"]):
            assert mine["customer_id"] == other["customer_id"] and mine["model_version"] == other["model_version"]
            assert mine["prediction"] == other["prediction"]
            assert math.isclose(mine["probability"], other["probability"], rel_tol=1e-12)
        refused = post_json(port, "/invocations", {"dataframe_records": [{"customer_id": "abc"}]})
        assert refused.status == 400 and b"key column 'customer_id' takes integers" in refused.body
    finally:
        stop_process(process)


def test_feast_serve_answers_what_online_features_prints(serving_project, tmp_path, capsys):
    feast = shutil.which("feast")
    assert feast, "the feast command is not installed"
    port = free_port()
    log = tmp_path / "feast-serve.log"
    with open(log, "wb") as out:
        process = subprocess.Popen([feast, "-c", serving_project.feast.repo_path, "serve", "-h", "127.0.0.1",
                                    "-p", str(port), "--no-access-log"], stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_until_answering(process, port, "/health", log)
        answer = post_json(port, "/get-online-features", {
            "features": [f"customer_weekly_spend:{f}" for f in FEATURES], "entities": {"customer_id": KEYS}})
        assert answer.status == 200, answer.body
    finally:
        stop_process(process)
    body = answer.json()
    names = body["metadata"]["feature_names"]
    served = {name: result["values"] for name, result in zip(names, body["results"])}
    assert served["customer_id"] == KEYS

    args = ["--config", config_file(serving_project), "--table", "customer_weekly_spend", "--features", *FEATURES]
    for key in KEYS:
        args += ["--key", f"customer_id={key}"]
    capsys.readouterr()
    assert online_job.main(args) == 0
    printed = json.loads(capsys.readouterr().out)["rows"]
    for i, row in enumerate(printed):
        for feature in FEATURES:
            assert served[feature][i] == row[feature], (KEYS[i], feature)
    assert printed[-1]["found"] is False and all(served[f][-1] is None for f in FEATURES)
    assert all(row["found"] for row in printed[:-1])
