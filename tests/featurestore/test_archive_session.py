"""A session that would write the class-data archive writes nothing when its job fails."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from featurestore.runtime import cache_folder, class_data_archive

pytestmark = pytest.mark.slow

FAILING_JOB = textwrap.dedent("""
    import sys
    from featurestore.archive_session import session_writing_archive
    from featurestore.core.config import load_config

    with session_writing_archive(load_config(sys.argv[1]), small_input=True) as spark:
        lang = spark._jvm.java.lang
        arguments = lang.management.ManagementFactory.getRuntimeMXBean().getInputArguments()
        print(" ".join(str(a) for a in arguments), lang.ProcessHandle.current().pid(), flush=True)
        raise RuntimeError("the job failed")
""")


def test_a_failed_job_kills_its_jvm_and_leaves_no_archive(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    env = {**os.environ, cache_folder.CACHE_DIR_ENV: str(cache)}
    env.pop("PYSPARK_GATEWAY_PORT", None)
    config = class_data_archive.write_tiny_project(tmp_path / "project")
    job = subprocess.run([sys.executable, "-c", FAILING_JOB, str(config)], env=env, capture_output=True, text=True)
    assert job.returncode == 1 and "RuntimeError: the job failed" in job.stderr, job.stderr[-3000:]
    assert "-XX:ArchiveClassesAtExit=" in job.stdout  # its JVM was one that writes the archive on exit
    jvm = int(job.stdout.split()[-1])
    with pytest.raises(ProcessLookupError):
        os.kill(jvm, 0)  # the JVM is gone with the process, not writing an archive in the background
    assert not list(cache.glob("spark-classes-*"))  # neither an archive nor a dump
