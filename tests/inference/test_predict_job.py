"""The predict job (jobs/batch_inference.py): arguments, output and documented exit codes."""

from __future__ import annotations

import os

import pytest
from inference_support import get_registry, scoring_rows

from featurestore.core.config import write_config
from jobs import batch_inference


@pytest.fixture(scope="module")
def job_setup(spark, tmp_path_factory):
    registry = get_registry(tmp_path_factory)
    root = tmp_path_factory.mktemp("predict_job")
    config_path = write_config(registry.config, root / "featurelake.yaml")
    rows = scoring_rows(rows=20)
    rows.to_parquet(root / "entities.parquet", index=False)
    rows.head(0).to_parquet(root / "empty.parquet", index=False)
    return registry, str(config_path), root


def _run(config_path: str, *args: str) -> int:
    return batch_inference.main(["--config", config_path, *args])


def test_parser_has_the_contract_options():
    args = batch_inference.build_parser().parse_args(
        ["--input", "x", "--model-uri", "models:/m@a", "--output-table", "t", "--batch-id", "b"])
    assert (args.input, args.model_uri, args.output_table, args.batch_id) == ("x", "models:/m@a", "t", "b")
    assert batch_inference.build_parser().parse_args(["--input", "x"]).model_uri is None  # training.model_name


@pytest.mark.parametrize("model_uri, code", [
    ("churn_model", 2),                          # does not parse
    ("models:/lr_model/Prod", 2),                # unknown stage
    ("models:/unknown_model/Production", 3),     # unknown model
    ("models:/idle_model/Production", 3),        # no Production version
    ("models:/lr_model@nobody", 3),              # unknown alias
])
def test_bad_model_references_exit_codes(job_setup, model_uri, code):
    registry, config_path, root = job_setup
    assert _run(config_path, "--input", str(root / "entities.parquet"), "--model-uri", model_uri,
                "--keys", "id", "--output-table", "job_bad") == code
    assert not os.path.exists(registry.config.table_path("job_bad"))


def test_bad_inputs_exit_codes(job_setup):
    registry, config_path, root = job_setup
    common = ["--model-uri", "models:/lr_model/Production", "--output-table", "job_bad_input"]
    assert _run(config_path, "--input", str(root / "missing.parquet"), *common, "--keys", "id") == 3
    assert _run(config_path, "--input", str(root / "entities.parquet"), *common, "--keys", "customer_id") == 2
    assert _run(config_path, "--input", str(root / "entities.parquet"), *common) == 2  # no spec and no --keys
    assert not os.path.exists(registry.config.table_path("job_bad_input"))


def test_empty_input_exits_0_and_writes_nothing(job_setup, capsys):
    registry, config_path, root = job_setup
    assert _run(config_path, "--input", str(root / "empty.parquet"), "--model-uri", "models:/lr_model/Production",
                "--keys", "id", "--output-table", "job_empty") == 0
    assert "input is empty" in capsys.readouterr().out
    assert not os.path.exists(registry.config.table_path("job_empty"))


@pytest.mark.slow
def test_job_scores_and_reports(spark, job_setup, capsys):
    registry, config_path, root = job_setup
    assert _run(config_path, "--input", str(root / "entities.parquet"), "--model-uri", "models:/lr_model@champion",
                "--keys", "id", "--output-table", "job_preds", "--batch-id", "2026-11-27") == 0
    out = capsys.readouterr().out
    assert "model lr_model version 2 (models:/lr_model@champion) scored 20 rows" in out
    table = spark.read.format("delta").load(registry.config.table_path("job_preds"))
    assert table.count() == 20 and {r.batch_id for r in table.select("batch_id").collect()} == {"2026-11-27"}
