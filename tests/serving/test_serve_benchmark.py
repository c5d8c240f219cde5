"""Smoke test of benchmarks/serving.py: it runs at its smallest size (one single-process server, a few dozen
requests, 2 s of 2 clients) against the served test project and checks its answers. No timings are asserted."""

from __future__ import annotations

import pytest

from benchmarks import serving as serving_benchmark

pytestmark = pytest.mark.slow


def test_serving_benchmark_runs_and_every_answer_is_correct(serving_project, tmp_path):
    args = serving_benchmark.build_parser().parse_args([
        "--demo", serving_project.base_dir, "--customers", "120", "--warmup", "5", "--single", "20",
        "--hundred", "5", "--clients", "2", "--seconds", "2", "--workers", "1", "--baseline-workers", "0",
        "--workdir", str(tmp_path), "--out", "-"])
    result = serving_benchmark.run(args)
    assert result["equal"] is True
    single, hundred = result["tables"]["Latency phases"][1:]
    assert (single["requests"], single["errors"], hundred["requests"], hundred["errors"]) == (20, 0, 5, 0)
    sustained = result["tables"]["Sustained load"]
    assert [s["workers"] for s in sustained] == [1]  # one server: --workers 2 is tested in test_serve_freshness
    assert all(s["requests"] > 0 and s["errors"] == 0 and s["server_cpu_ms_per_request"] > 0 for s in sustained)
    assert [r["ratio"] for r in result["ratios"]] == ["single-row p50 (ms)", "single-row p99 (ms)",
                                                      "100-row p50 (ms)", "sustained req/s (2 clients)"]
    assert len(result["load_at_start"]) == 3 and result["machine"]["cpu_count"] >= 1
