"""spark-submit.sh without a cluster: its refusals, the command it builds and the code archive."""

from __future__ import annotations

import os
import shlex
import shutil
import socket
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
import yaml

from cluster_services import REPO_ROOT, free_port, run_submit, spark_home
from featurestore.runtime.cache_folder import CACHE_DIR_ENV
from featurestore.runtime.class_data_archive import archive_path
from featurestore.runtime.resolved_jars import record_resolution
from featurestore.runtime.spark_session import (LOCAL_DEFAULTS, PROVIDED_BY_SPARK, QUICK_START_JAVA_OPTIONS, delta_package,
                                        delta_spark_conf)

ARCHIVE = REPO_ROOT / "dist" / "featurelake-code.zip"
INSTALLED_PACKAGES = ("featurestore", "inference", "jobs")  # the design card's three import names
LAUNCHER = REPO_ROOT / "dist" / "featurelake_job.py"


def printed_command(stderr: str) -> list[str]:
    """The spark-submit command line the script printed (its last 'spark-submit.sh: ' line)."""
    lines = [line for line in stderr.splitlines() if line.startswith("spark-submit.sh: /")
             or line.startswith("spark-submit.sh: spark-submit")]
    assert lines, f"no command printed:\n{stderr}"
    return shlex.split(lines[-1].split(": ", 1)[1])


def conf_values(cmd: list[str]) -> dict[str, str]:
    """The --conf KEY=VALUE pairs of a command (the last one wins, as in spark-submit)."""
    pairs = {}
    for flag, value in zip(cmd, cmd[1:]):
        if flag == "--conf":
            key, _, val = value.partition("=")
            pairs[key] = val
    return pairs


def option(cmd: list[str], name: str) -> str:
    return cmd[cmd.index(name) + 1]


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "proj" / "featurelake.yaml"
    path.parent.mkdir()
    path.write_text(yaml.safe_dump({
        "warehouse": "warehouse",
        "definitions": "jobs.demo.feature_tables",
        "spark": {"master": "spark://127.0.0.1:1", "conf": {"spark.sql.shuffle.partitions": "3"}},
    }))
    return path


def test_help_explains_usage(tmp_path):
    result = run_submit(["--help"], cwd=tmp_path)
    assert result.returncode == 0
    for text in ("Usage: ./spark-submit.sh", "--master", "--deploy-mode", "--conf", "--config", "--py-files"):
        assert text in result.stdout


def test_unknown_job_is_refused(tmp_path):
    result = run_submit(["no_such_job", "--config", "x.yaml"], cwd=tmp_path)
    assert result.returncode == 2
    assert "unknown job 'no_such_job'" in result.stderr
    assert "build_features" in result.stderr  # the available jobs are listed
    helper = run_submit(["common"], cwd=tmp_path)  # a module of jobs/ that is not a job
    assert helper.returncode == 2 and "unknown job 'common'" in helper.stderr


def test_missing_config_file_is_refused(tmp_path):
    result = run_submit(["build_features", "--config", str(tmp_path / "missing.yaml")], cwd=tmp_path)
    assert result.returncode == 2
    assert f"configuration file not found: {tmp_path / 'missing.yaml'}" in result.stderr


def test_missing_spark_submit_is_reported(tmp_path):
    result = run_submit(["build_features"], cwd=tmp_path, env={**os.environ, "SPARK_SUBMIT": "/nonexistent/spark-submit"})
    assert result.returncode == 5
    assert "spark-submit not found at '/nonexistent/spark-submit'" in result.stderr

    bin_dir = tmp_path / "bin"  # a PATH with Python but no Spark at all
    bin_dir.mkdir()
    (bin_dir / "python3").symlink_to(sys.executable)
    env = {k: v for k, v in os.environ.items() if k not in ("SPARK_HOME", "SPARK_SUBMIT")}
    env["PATH"] = f"{bin_dir}:/usr/bin:/bin"
    result = subprocess.run([str(REPO_ROOT / "spark-submit.sh"), "build_features"], cwd=tmp_path, env=env,
                            text=True, capture_output=True, timeout=60)
    assert result.returncode == 5
    assert "spark-submit not found" in result.stderr


def test_dry_run_builds_the_full_command(tmp_path, config_file):
    env = {**os.environ, "FEATURELAKE_MLFLOW_TRACKING_URI": "http://127.0.0.1:5999"}
    result = run_submit(["--dry-run", "build_features", "--tables", "customer_profile",
                         "--config", str(config_file.relative_to(tmp_path)),
                         "--conf", "spark.sql.shuffle.partitions=7"], cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    cmd = printed_command(result.stderr)
    conf = conf_values(cmd)
    assert option(cmd, "--master") == "spark://127.0.0.1:1"  # from the config file
    assert option(cmd, "--deploy-mode") == "client"
    assert option(cmd, "--py-files") == str(ARCHIVE)
    assert option(cmd, "--packages") == delta_package()
    assert option(cmd, "--exclude-packages").split(",") == list(PROVIDED_BY_SPARK)
    assert conf["spark.sql.extensions"] == "io.delta.sql.DeltaSparkSessionExtension"
    assert conf["spark.sql.catalog.spark_catalog"] == "org.apache.spark.sql.delta.catalog.DeltaCatalog"
    assert Path(conf["spark.jars.ivySettings"]).is_file()
    assert conf["spark.pyspark.python"] == sys.executable
    assert conf["spark.executorEnv.FEATURELAKE_MLFLOW_TRACKING_URI"] == "http://127.0.0.1:5999"
    assert conf["spark.sql.shuffle.partitions"] == "7"  # the user's --conf wins over the config file's
    assert "spark.databricks.delta.snapshotPartitions" not in conf  # local defaults are for local masters only
    assert "spark.driver.extraJavaOptions" not in conf
    assert cmd.index("spark.sql.shuffle.partitions=7") > cmd.index("spark.sql.shuffle.partitions=3")
    assert cmd[cmd.index(str(LAUNCHER)):] == [str(LAUNCHER), "build_features", "--config", str(config_file),
                                               "--tables", "customer_profile"]


def test_cluster_deploy_mode_ships_the_config_file(tmp_path, config_file):
    result = run_submit(["--dry-run", "--master", "yarn", "--deploy-mode", "cluster", "build_features",
                         "--config", str(config_file)], cwd=tmp_path,
                        env={**os.environ, "MLFLOW_TRACKING_URI": "http://mlflow:5000"})
    assert result.returncode == 0, result.stderr
    cmd = printed_command(result.stderr)
    assert option(cmd, "--master") == "yarn"
    assert option(cmd, "--files") == str(config_file)
    assert cmd[cmd.index(str(LAUNCHER)):][:4] == [str(LAUNCHER), "build_features", "--config", "featurelake.yaml"]
    assert conf_values(cmd)["spark.yarn.appMasterEnv.MLFLOW_TRACKING_URI"] == "http://mlflow:5000"


def test_no_delta_package_keeps_extension_but_adds_no_jars(tmp_path):
    result = run_submit(["--dry-run", "--no-delta-package", "--master", "local[1]", "build_features"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    cmd = printed_command(result.stderr)
    assert "--packages" not in cmd and "--exclude-packages" not in cmd
    conf = conf_values(cmd)
    assert "spark.jars.ivySettings" not in conf and "spark.jars" not in conf
    assert conf["spark.sql.extensions"] == "io.delta.sql.DeltaSparkSessionExtension"


def test_a_local_master_gets_what_featurelake_gives_its_own_local_sessions(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv(CACHE_DIR_ENV, str(cache))
    archive = archive_path()
    archive.parent.mkdir(parents=True)
    archive.write_bytes(b"a class-data archive")  # a dry run never maps it
    jars = [tmp_path / "delta-spark.jar", tmp_path / "delta-storage.jar"]
    for jar in jars:
        jar.write_bytes(b"jar")
    record_resolution(delta_spark_conf(), ",".join(jar.as_uri() for jar in jars))
    config = tmp_path / "featurelake.yaml"
    config.write_text(yaml.safe_dump({"spark": {
        "master": "local[2]", "quick_start": "always",
        "conf": {"spark.sql.shuffle.partitions": "3", "spark.driver.extraJavaOptions": "-Dfrom.config=1"}}}))

    result = run_submit(["--dry-run", "build_features", "--config", str(config)], cwd=tmp_path, env=dict(os.environ))

    assert result.returncode == 0, result.stderr
    cmd = printed_command(result.stderr)
    conf = conf_values(cmd)
    assert option(cmd, "--master") == "local[2]"
    assert conf["spark.databricks.delta.snapshotPartitions"] == LOCAL_DEFAULTS["spark.databricks.delta.snapshotPartitions"]
    assert conf["spark.sql.shuffle.partitions"] == "3"  # the config file's entry wins over the local default
    assert conf["spark.sql.codegen.wholeStage"] == "false"  # quick start: always
    options = conf["spark.driver.extraJavaOptions"]
    assert options.startswith(f"-XX:SharedArchiveFile={archive} ")
    assert QUICK_START_JAVA_OPTIONS in options and options.endswith("-Dfrom.config=1")
    # The recorded jars instead of an Ivy resolution.
    assert "--packages" not in cmd and "spark.jars.ivySettings" not in conf
    assert conf["spark.jars"] == ",".join(jar.as_uri() for jar in jars)

    # quick_start: auto goes by the project's data (warehouse and source_root), not the job's inputs.
    (tmp_path / "warehouse").mkdir()
    for warehouse, quick in (("warehouse", True), ("abfss://lake@acct.dfs.core.windows.net/warehouse", False)):
        auto = tmp_path / "auto.yaml"
        auto.write_text(yaml.safe_dump({"warehouse": warehouse, "spark": {"master": "local[2]"}}))
        result = run_submit(["--dry-run", "build_features", "--config", str(auto)], cwd=tmp_path, env=dict(os.environ))
        options = conf_values(printed_command(result.stderr))["spark.driver.extraJavaOptions"]
        assert (QUICK_START_JAVA_OPTIONS in options) == quick, (warehouse, options)

    master_given = run_submit(["--dry-run", "--master", "spark://127.0.0.1:1", "--no-master-check", "build_features",
                               "--config", str(config)], cwd=tmp_path, env=dict(os.environ))
    conf = conf_values(printed_command(master_given.stderr))
    assert conf.get("spark.driver.extraJavaOptions") == "-Dfrom.config=1"  # the config file's own, alone
    assert "spark.jars" not in conf and "spark.databricks.delta.snapshotPartitions" not in conf


def test_bad_deploy_mode_and_conf_are_refused(tmp_path):
    result = run_submit(["--deploy-mode", "remote", "build_features"], cwd=tmp_path)
    assert result.returncode == 2 and "--deploy-mode must be client or cluster" in result.stderr
    result = run_submit(["--conf", "novalue", "build_features"], cwd=tmp_path)
    assert result.returncode == 2 and "--conf expects KEY=VALUE" in result.stderr


def copy_of_project(target: Path) -> Path:
    """A copy of the script and the project's packages, so the archive test owns its dist/."""
    target.mkdir()
    shutil.copy2(REPO_ROOT / "spark-submit.sh", target / "spark-submit.sh")
    shutil.copy2(REPO_ROOT / "setup.cfg", target / "setup.cfg")
    for package in INSTALLED_PACKAGES:
        shutil.copytree(REPO_ROOT / package, target / package, ignore=shutil.ignore_patterns("__pycache__"))
    return target


def package_files(root: Path) -> set[str]:
    """Every module and package-data file of the installed packages under ``root``, as archive names."""
    return {path.relative_to(root).as_posix() for package in INSTALLED_PACKAGES
            for path in (root / package).rglob("*")
            if path.suffix in (".py", ".xml", ".html") and "__pycache__" not in path.parts}


def test_archive_holds_the_packages_and_is_rebuilt_when_stale(tmp_path):
    project = copy_of_project(tmp_path / "project")
    archive = project / "dist" / "featurelake-code.zip"

    def dry_run() -> subprocess.CompletedProcess:
        env = {**os.environ, "SPARK_HOME": str(spark_home()), "PYTHON": sys.executable}
        return subprocess.run([str(project / "spark-submit.sh"), "--dry-run", "--master", "local[1]",
                               "build_features"], cwd=tmp_path, env=env, text=True, capture_output=True,
                              timeout=120)

    result = dry_run()
    assert result.returncode == 0, result.stderr
    assert "built " + str(archive) in result.stderr
    names = zipfile.ZipFile(archive).namelist()
    expected = package_files(project)
    assert {"featurestore/runtime/ivysettings.xml", "jobs/demo/feature_tables.py",
            "inference/report/templates/index.html"} <= expected
    assert expected - set(names) == set()  # no module of the installed packages is missing
    assert not [n for n in names if "__pycache__" in n]

    assert "built " not in dry_run().stderr  # up to date: not rebuilt

    source = project / "jobs" / "demo" / "feature_tables.py"
    later = archive.stat().st_mtime + 60
    os.utime(source, (later, later))
    assert "built " + str(archive) in dry_run().stderr  # a newer source file: rebuilt


def test_jobs_import_from_the_archive_through_the_launcher(tmp_path):
    run_submit(["--dry-run", "--master", "local[1]", "build_features"], cwd=tmp_path)
    env = {**os.environ, "PYTHONPATH": str(ARCHIVE)}
    probe = subprocess.run([sys.executable, "-c", "import featurestore, jobs.build_features, jobs.demo.feature_tables, inference.report.render; "
                            "inference.report.render.environment().get_template('index.html'); "
                            "print(featurestore.__file__); print(inference.report.__file__)"], cwd=tmp_path, env=env,
                           text=True, capture_output=True, timeout=120)
    assert probe.returncode == 0, probe.stderr
    assert all(line.startswith(str(ARCHIVE)) for line in probe.stdout.split())
    helped = subprocess.run([sys.executable, str(LAUNCHER), "build_features", "--help"], cwd=tmp_path, env=env,
                            text=True, capture_output=True, timeout=120)
    assert helped.returncode == 0, helped.stderr
    assert "--tables" in helped.stdout


def test_unreachable_master_fails_fast(tmp_path):
    port = free_port()  # nothing listens there
    started = time.monotonic()
    result = run_submit(["--master", f"spark://127.0.0.1:{port}", "build_features"], cwd=tmp_path, timeout_s=120)
    assert result.returncode == 5
    assert f"Spark master spark://127.0.0.1:{port} cannot be reached" in result.stderr
    print(f"refused in {time.monotonic() - started:.1f} s")


@pytest.mark.cluster
@pytest.mark.slow
def test_unreachable_master_makes_spark_submit_give_up(tmp_path):
    """Without the script's check, spark-submit itself gives up (3 registration attempts) with a
    non-zero exit code instead of waiting forever."""
    port = free_port()
    result = run_submit(["--no-master-check", "--master", f"spark://127.0.0.1:{port}",
                         "--conf", "spark.ui.enabled=false", "--conf", "spark.driver.host=127.0.0.1",
                         "build_features"], cwd=tmp_path, timeout_s=400)
    assert result.returncode != 0
    assert "All masters are unresponsive" in result.stderr


@pytest.mark.slow
def test_timeout_stops_a_submission_that_never_gets_going(tmp_path):
    """A master that accepts connections but never answers: --timeout stops the wait."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)  # accepts TCP connections (the script's check passes), never speaks Spark
        master = f"spark://127.0.0.1:{silent.getsockname()[1]}"
        started = time.monotonic()
        result = run_submit(["--timeout", "20", "--master", master, "--conf", "spark.ui.enabled=false",
                             "--conf", "spark.driver.host=127.0.0.1", "build_features"], cwd=tmp_path, timeout_s=300)
    assert result.returncode == 124
    assert "build_features did not finish within 20 s (--timeout)" in result.stderr
    print(f"stopped after {time.monotonic() - started:.1f} s")


@pytest.mark.slow
def test_json_out_file_holds_the_json_alone_under_spark_submit(tmp_path):
    """spark-submit's PythonRunner merges the driver's stderr (its log) into stdout, so --json there
    is not the only thing on stdout; the --json-out file holds the document alone."""
    import json

    from featurestore.core.config import load_config
    from inference.tracking import client as mlflow_client

    config = tmp_path / "featurelake.yaml"
    config.write_text(yaml.safe_dump({"warehouse": "warehouse", "mlflow": {"tracking_uri": "sqlite:///mlflow.db"}}))
    mlflow_client(load_config(config, env={})).create_registered_model("price_model", description="monthly prices")
    (tmp_path / "results").mkdir()
    out = tmp_path / "results" / "models.json"

    result = run_submit(["--master", "local[1]", "models", "--config", str(config), "list", "--json",
                         "--json-out", str(out)], cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    document = json.loads(out.read_text())
    assert [(m["name"], m["description"], m["versions"]) for m in document] == [("price_model", "monthly prices", [])]
    assert [p.name for p in out.parent.iterdir()] == ["models.json"]
    assert json.dumps(document, indent=2) in result.stdout  # --json still prints it on stdout ...
    assert f"INFO featurelake: wrote the JSON result to {out}" in result.stdout  # ... among the driver's log
