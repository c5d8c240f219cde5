"""What a user sees at the terminal: featurelake's messages and progress, not the JVM's start-up
chatter or library warnings (those go to the workspace log file; ``--log-level DEBUG`` shows them)."""

from __future__ import annotations

import fcntl
import logging
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import time
import warnings
from pathlib import Path

import pytest

from featurestore.runtime import console
from featurestore.runtime.progress import StageWatcher, progress
from jobs.common import setup_logging

REPO = Path(__file__).resolve().parents[1]

# What a line from the JVM or a library looks like: log4j, Ivy, the JVM, Python warnings, MLflow's own format.
NOISE = re.compile(r"log4j|Setting default log level|NativeCodeLoader|WARN |:: resolving|:: loading settings|"
                   r"Ivy Default Cache|incubator modules|Warning:|warnings\.warn|UserWarning|RuntimeWarning|"
                   r"\bWARNING mlflow|^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d WARNING")


@pytest.fixture
def restore_logging():
    """Jobs reconfigure the root logger: put it back for the tests after."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    # An earlier test of this process may have left logging.captureWarnings on while pytest has
    # since put warnings.showwarning back: captureWarnings(True) would then do nothing.
    logging.captureWarnings(False)
    yield
    console.use_log_file(None, verbose=True)
    root.handlers, root.level = handlers, level
    logging.captureWarnings(False)


def test_library_warnings_go_to_the_log_file_not_the_terminal(tmp_path, capfd, restore_logging):
    redacting = setup_logging("INFO")
    log_file = tmp_path / "logs" / "featurelake.log"
    console.use_log_file(log_file, verbose=False, filters=[redacting])
    warnings.warn("a deprecation nobody can act on", UserWarning)
    logging.getLogger("mlflow.pyfunc").warning("Passing a Python object as python_model")
    logging.getLogger("feast.repo").error("the registry is broken")   # an error still shows
    logging.getLogger("featurestore.build").info("table t: 3 rows inserted")  # featurelake's own line shows
    err = capfd.readouterr().err
    assert "table t: 3 rows inserted" in err and "the registry is broken" in err
    assert "nobody can act on" not in err and "python_model" not in err
    logged = log_file.read_text()
    assert "nobody can act on" in logged and "python_model" in logged and "table t: 3 rows inserted" in logged


def test_debug_shows_library_warnings_on_the_terminal(tmp_path, capfd, restore_logging):
    setup_logging("DEBUG")
    console.use_log_file(tmp_path / "featurelake.log", verbose=True)
    logging.getLogger("mlflow.pyfunc").warning("Passing a Python object as python_model")
    assert "python_model" in capfd.readouterr().err
    assert console.jvm_log_file() is None  # and the JVM's output stays on stderr


JVM_STAND_IN = """
import os, sys
from pathlib import Path
from featurestore.runtime import console
console.use_log_file(Path(sys.argv[1]), verbose=sys.argv[2] == "verbose")
with console.jvm_output():  # what a child started here writes goes where the JVM's would
    os.system("echo child-stdout; echo child-stderr 1>&2")
print("command output")
"""


@pytest.mark.parametrize("verbose", [False, True])
def test_a_child_started_in_jvm_output_writes_to_the_log_file_unless_verbose(tmp_path, verbose):
    log_file = tmp_path / "logs" / "featurelake.log"
    done = subprocess.run([sys.executable, "-c", JVM_STAND_IN, str(log_file), "verbose" if verbose else "quiet"],
                          capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert done.returncode == 0, done.stderr
    assert done.stdout == "command output\n"  # never the child's output, either way
    if verbose:
        assert "child-stdout" in done.stderr and "child-stderr" in done.stderr and not log_file.exists()
    else:
        assert "child" not in done.stderr
        assert log_file.read_text().split() == ["child-stdout", "child-stderr"]


def slow_job(spark, seconds: float = 3.0) -> int:
    """A Spark job of two stages whose tasks take ``seconds`` in all."""
    return spark.sparkContext.parallelize(range(8), 4).map(lambda x: (time.sleep(seconds / 4) or x % 2, 1)) \
        .reduceByKey(lambda a, b: a + b).count()


def test_off_a_terminal_a_long_step_logs_where_it_is_every_few_seconds(spark, caplog, monkeypatch):
    monkeypatch.setattr("featurestore.runtime.progress.HEARTBEAT_SECONDS", 1.0)
    with caplog.at_level(logging.INFO, logger="featurestore.runtime.progress"):
        with progress(spark, "scoring batch b1", on_terminal=False):
            assert slow_job(spark, 6.0) == 2
    lines = [r.getMessage() for r in caplog.records if r.name == "featurestore.runtime.progress"]
    assert lines and all(line.startswith("scoring batch b1: ") and "tasks of" in line for line in lines), lines
    assert any(re.search(r"stage \d+, \d+/\d+ tasks", line) for line in lines), lines


def test_on_a_terminal_a_long_step_draws_a_bar_of_its_tasks(spark, capfd):
    with progress(spark, "writing customer_profile", on_terminal=True):
        slow_job(spark)
    drawn = capfd.readouterr().err
    assert "writing customer_profile" in drawn and re.search(r"\d+/\d+ \[", drawn), drawn


def test_a_short_step_shows_nothing(spark, capfd, caplog, monkeypatch):
    # "short": shorter than the heartbeat; a count of 3 rows took over 10 s at load 20 on 2 cores
    monkeypatch.setattr("featurestore.runtime.progress.HEARTBEAT_SECONDS", 120.0)
    with caplog.at_level(logging.INFO), progress(spark, "quick", on_terminal=False):
        spark.range(3).count()
    assert "quick" not in caplog.text


def test_the_watcher_counts_every_task_of_the_stages_it_saw(spark):
    watcher = StageWatcher(spark.sparkContext.statusTracker())
    import threading

    job = threading.Thread(target=slow_job, args=(spark, 2.0))
    job.start()
    seen = []
    while job.is_alive():
        seen.append(watcher.poll())
        time.sleep(0.1)
    done = watcher.poll()
    assert any(s.tasks_total > 0 for s in seen)
    assert done.tasks_done == done.tasks_total >= 4 and done.running_stage is None


def run_in_terminal(command: list[str], cwd: Path, timeout: float) -> tuple[int, str]:
    """Run ``command`` with a pseudo-terminal as its stdout and stderr: (exit code, what it printed)."""
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))  # a 120-column terminal
    process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=follower, stderr=follower, cwd=cwd,
                               env={**os.environ, "PYTHONPATH": str(REPO)})
    os.close(follower)
    chunks, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([leader], [], [], 1.0)
        if ready:
            try:
                data = os.read(leader, 65536)
            except OSError:  # the process closed the terminal
                break
            if not data:
                break
            chunks.append(data)
        elif process.poll() is not None:
            break
    os.close(leader)
    code = process.wait(timeout=60)
    return code, b"".join(chunks).decode("utf-8", "replace")


def terminal_lines(transcript: str) -> list[str]:
    """The lines left on a terminal: a progress bar redrawn with carriage returns and erased leaves none."""
    lines = []
    for raw in transcript.replace("\r\n", "\n").split("\n"):
        shown = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", raw.split("\r")[-1])
        if shown.strip():
            lines.append(shown)
    return lines


@pytest.mark.slow
def test_a_demo_run_prints_at_most_30_lines_and_no_java_or_library_warning(tmp_path):
    code, transcript = run_in_terminal([sys.executable, "-m", "jobs.cli", "demo", "--workdir", str(tmp_path / "demo"),
                                        "--no-warmup"], tmp_path, timeout=1800)
    lines = terminal_lines(transcript)
    assert code == 0, transcript[-5000:]
    assert len(lines) <= 30, "\n".join(lines)
    assert [line for line in lines if NOISE.search(line)] == [], "\n".join(lines)
    assert "demo finished" in transcript
    logged = (tmp_path / "demo" / "logs" / "featurelake.log").read_text()
    assert "incubator modules" in logged  # the JVM's start-up lines went to the log file
    assert "UserWarning" in logged or "WARNING mlflow" in logged or "RuntimeWarning" in logged
