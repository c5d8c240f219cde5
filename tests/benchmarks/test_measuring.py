"""How the benchmarks time their cases and gather results (no Spark, no timings asserted)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks import run_all
from benchmarks.common import measure_rounds


def test_measure_rounds_warms_up_then_rotates_the_order() -> None:
    calls: list[str] = []
    cases = [(name, lambda name=name: calls.append(name), 10) for name in ("a", "b", "c")]

    results = measure_rounds(cases, repeat=2, before=lambda: calls.append("reset"))

    runs = [c for c in calls if c != "reset"]
    assert runs == ["a", "b", "c",   # untimed warm-up round
                    "b", "c", "a",   # timed round 1, rotated by one
                    "c", "a", "b"]   # timed round 2
    assert calls.count("reset") == len(runs)  # before() ahead of every run, warm-up included
    assert [r["name"] for r in results] == ["a", "b", "c"]
    for r in results:
        assert len(r["all_seconds"]) == 2 and r["first_run_seconds"] >= 0 and r["rows"] == 10


def _write_result(folder: Path, stem: str, benchmark: str, scale: float) -> None:
    result = {"benchmark": benchmark, "parameters": {"scale": scale}, "load_at_start": [1, 1, 1],
              "load_at_end": [1, 1, 1], "measurements": [], "ratios": [{"ratio": f"{stem} ratio", "value": 1,
                                                                        "target": "", "met": "yes"}]}
    (folder / f"{stem}.json").write_text(json.dumps(result), encoding="utf-8")


def test_summary_keeps_benchmarks_not_run_now_at_every_scale(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(run_all, "RESULTS_DIR", tmp_path)
    _write_result(tmp_path, "training_set_x1", "training_set", 1.0)   # a run whose first scale was not 1
    _write_result(tmp_path, "training_set_x10", "training_set", 10.0)
    _write_result(tmp_path, "table_writes", "table_writes", 1.0)

    earlier = run_all.earlier_results(["table_writes"])

    assert [(o["benchmark"], o["scale"], o["exit_code"]) for o in earlier] == [
        ("training_set", 1.0, "earlier run"), ("training_set", 10.0, "earlier run")]
    rows = run_all.headline_rows(earlier)
    assert [r["ratio"] for r in rows] == ["training_set_x1 ratio", "training_set_x10 ratio"]
