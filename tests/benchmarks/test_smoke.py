"""Smoke tests of the benchmark suite: each benchmark runs at a minimal size, produces a
results structure and its equality check passes. No timings are asserted."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def _check_result(result: dict, names: int) -> None:
    assert result["machine"]["cpu_count"] >= 1
    assert len(result["load_at_start"]) == 3
    assert len(result["measurements"]) == names
    for m in result["measurements"]:
        assert m["seconds"] > 0 and m["rows"] > 0
        assert m["peak_driver_rss_mib"] > 0
    assert result["ratios"]


def test_training_set_matches_feast_and_pandas(spark, tmp_path: Path) -> None:
    from benchmarks import training_set

    # In process, on the tests' session: the sides' fresh processes would each start a JVM.
    args = training_set.build_parser().parse_args(
        ["--labels", "300", "--entities", "30", "--rows-per-entity", "3", "--ttl-days", "20", "--tie-fraction", "0.05",
         "--features-per-table", "2", "--label-time-unit", "ns", "--sink", "parquet", "--in-process",
         "--workdir", str(tmp_path)])
    result = training_set.run(args)
    assert [m["rows"] for m in result["measurements"]] == [300, 300, 300]   # ours, Feast, pandas
    assert all(m["seconds"] > 0 for m in result["measurements"])
    assert result["measurements"][0]["peak_driver_rss_mib"] > 0
    check = result["equality_check"]
    assert result["equal"], check
    assert check["rows_ours"] == check["rows_feast"] == check["rows_pandas"] == 300
    assert 0 < check["feature_nulls_ours"] < 300   # the 20-day ttl leaves some rows without features
    assert result["results_name"] == "training_set_ttl20_ties5_f2_ns_parquet"


def test_table_writes_merge_equals_rewrite(spark, tmp_path: Path) -> None:
    from benchmarks import table_writes

    args = table_writes.build_parser().parse_args(["--rows", "2000", "--partitions", "2", "--days", "2",
                                                   "--no-warmup", "--workdir", str(tmp_path)])
    result = table_writes.run(args)
    _check_result(result, 12)
    assert result["equal"]
    merged = result["tables"]["Incremental MERGE (Delta operation metrics)"][0]
    assert merged["operation"] == "MERGE"
    assert int(merged["numTargetRowsUpdated"]) == 10 and int(merged["numTargetRowsInserted"]) == 10
    latest = result["tables"]["Latest-day MERGE (Delta operation metrics)"][0]
    assert int(latest["numTargetRowsUpdated"]) == 10 and int(latest["numTargetRowsInserted"]) == 10
    assert int(latest["numTargetFilesRemoved"]) == 1  # one file per day: only the latest day's is rewritten
    steps = [s["step"] for s in result["tables"]["write_feature_table's steps, one full upsert after the timed rounds"]]
    assert steps == ["current_version", "check_table_columns", "sync_metadata", "source_spans_table",
                     "rewrite_upsert", "_last_commit", "write_feature_table in all"]


def test_startup_profile_names_the_phases(tmp_path: Path) -> None:
    from benchmarks import startup

    profile = startup.run_profile(startup.prepare(tmp_path), tmp_path / "cache")
    phases = {mark["phase"]: mark for mark in profile["marks"]}
    assert phases["JVM launch + Ivy resolution (launch_gateway)"]["seconds"] > 0
    assert phases["Feast apply"]["seconds"] > 0
    assert phases["Delta write (write_feature_table)"]["spark_jobs"] > 0
    # An empty warehouse: the write finds no table, then creates it in one commit.
    assert [step["step"] for step in profile["write_steps"]] == ["current_version", "create_table_with"]
    assert (tmp_path / "warehouse" / "tiny" / "_delta_log").is_dir()


def test_results_files_render(tmp_path: Path) -> None:
    from benchmarks.common import result_header, target_row, write_results
    from benchmarks.training_set import build_parser

    result = result_header("demo", build_parser().parse_args([]), {"rows": 1})
    result.update(measurements=[{"name": "x", "rows": 1, "seconds": 0.5, "rows_per_second": 2}],
                  ratios=[target_row("a / b", 2.5, ">= 2", True)], summary=["x took 0.5 s"])
    json_path, md_path = write_results(result, tmp_path / "demo")
    assert json.loads(json_path.read_text())["ratios"][0]["met"] == "yes"
    text = md_path.read_text()
    assert "| a / b | 2.5 | >= 2 | yes |" in text and "x took 0.5 s" in text


def test_summary_keeps_the_scaling_of_earlier_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import argparse

    from benchmarks import run_all

    monkeypatch.setattr(run_all, "RESULTS_DIR", tmp_path)
    outcomes = [{"benchmark": "table_writes", "scale": scale, "exit_code": code, "process_seconds": "",
                 "load_before": None, "load_after": None, "results": str(tmp_path / f"table_writes_{scale}.json"),
                 "result": {"measurements": [{"name": "overwrite", "rows": rows, "seconds": seconds}], "ratios": []}}
                for scale, code, rows, seconds in ((1.0, 0, 100, 1.0), (10.0, "earlier run", 1000, 4.0))]
    # `--only table_writes` at scale 1 (the default), with a scale-10 run from before
    text = run_all.write_summary(outcomes, argparse.Namespace(scales=[1.0])).read_text()
    assert "## Scaling" in text and "| table_writes | overwrite | 10 | 1,000 | 4 |" in text
