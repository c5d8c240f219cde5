"""`featurelake warmup` writes a class-data archive that a later build's JVM maps."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from featurestore.runtime import cache_folder, class_data_archive

pytestmark = pytest.mark.slow


def test_warmup_writes_the_archive_and_a_build_uses_it(tmp_path: Path) -> None:
    env = {**os.environ, cache_folder.CACHE_DIR_ENV: str(tmp_path / "cache")}
    env.pop("PYSPARK_GATEWAY_PORT", None)
    warmup = subprocess.run([sys.executable, "-m", "jobs.warmup"], env=env, capture_output=True, text=True)
    assert warmup.returncode == 0, warmup.stderr[-3000:]
    archives = list((tmp_path / "cache").glob("spark-classes-*.jsa"))
    assert len(archives) == 1 and archives[0].stat().st_size > 10 * 2**20
    assert "class-data archive written" in warmup.stderr
    size_mb = archives[0].stat().st_size / 2**20
    assert warmup.stdout == (f"class-data archive written: {archives[0]} ({size_mb:.0f} MB); "
                             "later local Spark jobs on this machine map it and start faster\n")
    assert not list((tmp_path / "cache").glob("*.dump"))

    # A tiny build with the archive: its JVM is started with it, and (-Xshare:on) refuses to
    # start at all if the archive cannot be mapped, so exit 0 proves it was used.
    config = class_data_archive.write_tiny_project(
        tmp_path / "project", '  conf:\n    spark.driver.extraJavaOptions: "-Xshare:on"\n')
    build = subprocess.run([sys.executable, "-m", "jobs.build_features", "--config", str(config),
                            "--log-level", "DEBUG"],  # the JVM options are a DEBUG line
                           env=env, capture_output=True, text=True)
    assert build.returncode == 0, build.stderr[-3000:]
    assert f"-XX:SharedArchiveFile={archives[0]}" in build.stderr
    assert (tmp_path / "project" / "warehouse" / "tiny" / "_delta_log").is_dir()
