"""The catalog commands, ``models events`` and ``report`` read Delta with delta-rs: the same
output, JSON and exit codes as with Spark, on one warehouse, and no JVM started."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from featurestore.core.config import Config
from jobs import cli
from report_workspace import MODEL, make_project

REPO = Path(__file__).resolve().parents[2]

COMMANDS = [
    ["tables", "list"],
    ["tables", "list", "--json"],
    ["tables", "describe", "customer_profile"],
    ["tables", "describe", "customer_weekly_spend", "--json"],
    ["tables", "describe", "no_such_table"],           # exit 3
    ["tables", "describe", "promotion_events"],        # a Delta table, but no feature table: exit 3
    ["tables", "history", "customer_profile"],
    ["tables", "history", "customer_profile", "--json"],
    ["tables", "history", "customer_weekly_spend", "--limit", "1", "--json"],
    ["models", "events"],
    ["models", "events", "--json"],
    ["models", "events", MODEL, "--json"],
    ["models", "activity", MODEL, "--json"],
    ["models", "requests", "--json"],
]


def run_command(config: Config, args: list[str], capfd, monkeypatch, reader: str) -> tuple[int, str, str]:
    """Run ``featurelake ARGS`` in this process with the given metadata reader: (exit code, stdout, stderr)."""
    monkeypatch.setenv("FEATURELAKE_METADATA_READER", reader)
    capfd.readouterr()
    code = cli.main(["--config", str(Path(config.base_dir) / "featurelake.yaml"), *args])
    out, err = capfd.readouterr()
    return code, out, err


def error_lines(err: str) -> list[str]:
    """The ERROR lines of a job's log, without their timestamps."""
    return [line.split(" ", 2)[2] for line in err.splitlines() if " ERROR " in line]


@pytest.mark.parametrize("args", COMMANDS, ids=" ".join)
def test_each_command_prints_the_same_with_delta_rs_as_with_spark(spark, report_workspace, args, capfd,
                                                                  monkeypatch):
    rust = run_command(report_workspace, args, capfd, monkeypatch, "auto")
    with_spark = run_command(report_workspace, args, capfd, monkeypatch, "spark")
    assert rust[0] == with_spark[0], (rust, with_spark)
    assert rust[1] == with_spark[1]
    assert error_lines(rust[2]) == error_lines(with_spark[2])
    assert "reading Delta metadata with Spark" not in rust[2]  # delta-rs answered alone
    assert "metadata_reader is 'spark'" in with_spark[2] or rust[0] != 0 or not rust[1]
    if "--json" in args and rust[0] == 0:
        json.loads(rust[1])
    if args[:2] == ["tables", "describe"] and args[2] != "customer_profile" and "--json" not in args:
        assert rust[0] == 3 and f"feature table {args[2]!r} not found" in rust[2]


def test_the_report_is_the_same_with_delta_rs_as_with_spark(spark, report_workspace, tmp_path, capfd, monkeypatch):
    pages = {}
    for reader in ("auto", "spark"):
        out = tmp_path / reader
        code, printed, _ = run_command(report_workspace, ["report", "--out", str(out)], capfd, monkeypatch, reader)
        assert code == 0 and "report written" in printed
        pages[reader] = {p.relative_to(out): _without_generation_time(p.read_text()) for p in out.rglob("*.html")}
    assert sorted(pages["auto"]) == sorted(pages["spark"]) and len(pages["auto"]) == 6  # with the compare page
    for page in pages["auto"]:
        assert pages["auto"][page] == pages["spark"][page], page
    assert "promoted" in pages["auto"][Path("models") / f"{MODEL}.html"]
    assert "auc 0.62 out of range" in pages["auto"][Path("monitoring.html")]


def _without_generation_time(html: str) -> str:
    return re.sub(r"generated <span id=\"generated-at\">[^<]*</span>|Generated [^<]* UTC by", "GENERATED", html)


def test_unreadable_rows_fall_back_to_spark_with_one_line_saying_why(spark, report_workspace, tmp_path, capfd,
                                                                     monkeypatch):
    config = make_project(tmp_path)
    events = config.table_path("promotion_events")
    shutil.copytree(report_workspace.table_path("promotion_events"), events)
    spark.sql(f"ALTER TABLE delta.`{events}` SET TBLPROPERTIES ('delta.enableDeletionVectors' = 'true')")
    spark.sql(f"INSERT INTO delta.`{events}` SELECT model_name, 9, 2, metric, 0.1, 0.78, 'rejected', 'too low', "
              f"decided_at FROM delta.`{events}` WHERE candidate_version = 2")
    spark.sql(f"DELETE FROM delta.`{events}` WHERE candidate_version = 1")  # leaves a deletion vector
    rust = run_command(config, ["models", "events", "--json"], capfd, monkeypatch, "auto")
    with_spark = run_command(config, ["models", "events", "--json"], capfd, monkeypatch, "spark")
    assert rust[0] == 0 and rust[1] == with_spark[1]
    assert [e["candidate_version"] for e in json.loads(rust[1])] == [2, 9]
    told = [line for line in rust[2].splitlines() if "reading Delta metadata with Spark" in line]
    assert len(told) == 1 and " INFO " in told[0] and "deletionVectors" in told[0], rust[2]


JVM_CHECK = """
import json, sys
import psutil
from jobs.cli import main
code = main(sys.argv[2:])
java = [p.name() for p in psutil.Process().children(recursive=True) if "java" in p.name().lower()]
context = sys.modules.get("pyspark.context")
gateway = context is not None and context.SparkContext._gateway is not None
with open(sys.argv[1], "w") as f:
    json.dump({"code": code, "java": java, "gateway": gateway}, f)
"""


@pytest.mark.parametrize("args", [
    ["tables", "list"], ["tables", "describe", "customer_profile", "--json"], ["tables", "history", "customer_profile"],
    ["models", "events", MODEL], ["models", "activity", MODEL], ["report", "--out", "{tmp}/site"],
], ids=" ".join)
def test_metadata_commands_start_no_jvm(report_workspace, args, tmp_path):
    result = tmp_path / "result.json"
    command = [a.replace("{tmp}", str(tmp_path)) for a in args]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("PYSPARK_GATEWAY_PORT", None)
    done = subprocess.run([sys.executable, "-c", JVM_CHECK, str(result), "--config",
                           str(Path(report_workspace.base_dir) / "featurelake.yaml"), *command],
                          capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    outcome = json.loads(result.read_text())
    assert outcome == {"code": 0, "java": [], "gateway": False}, done.stderr[-3000:]
    assert done.stdout.strip()


def test_the_jvm_check_sees_a_command_that_starts_spark(report_workspace, tmp_path):
    """The check above is no tautology: the Spark reader starts a JVM, and the check sees it."""
    result = tmp_path / "result.json"
    env = {**os.environ, "PYTHONPATH": str(REPO), "FEATURELAKE_METADATA_READER": "spark"}
    env.pop("PYSPARK_GATEWAY_PORT", None)
    done = subprocess.run([sys.executable, "-c", JVM_CHECK, str(result), "--config",
                           str(Path(report_workspace.base_dir) / "featurelake.yaml"), "tables", "list"],
                          capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    outcome = json.loads(result.read_text())
    assert outcome["code"] == 0 and outcome["java"] and outcome["gateway"]
