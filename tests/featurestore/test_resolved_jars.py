"""Recorded Ivy resolutions replace spark.jars.packages only while every recorded jar exists."""

from __future__ import annotations

from pathlib import Path

import pytest

from featurestore.runtime import cache_folder
from featurestore.runtime.resolved_jars import RESOLUTION_KEYS, record_resolution, use_recorded_jars
from featurestore.runtime.spark_session import delta_spark_conf


@pytest.fixture(autouse=True)
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(cache_folder.CACHE_DIR_ENV, str(tmp_path / "cache"))
    return tmp_path / "cache"


def _jars(tmp_path: Path, *names: str) -> list[Path]:
    jars = []
    for name in names:
        jar = tmp_path / "ivy" / name
        jar.parent.mkdir(parents=True, exist_ok=True)
        jar.write_bytes(b"PK")
        jars.append(jar)
    return jars


def test_recorded_jars_replace_the_packages(tmp_path: Path) -> None:
    conf = {"spark.sql.shuffle.partitions": "4", **delta_spark_conf()}
    assert use_recorded_jars(conf) is conf  # nothing recorded yet
    jars = _jars(tmp_path, "delta-spark.jar", "delta storage.jar")
    record_resolution(conf, ",".join(j.as_uri() for j in jars))
    launch = use_recorded_jars(conf)
    assert launch["spark.jars"] == ",".join(j.as_uri() for j in jars)
    assert not set(RESOLUTION_KEYS) & set(launch)
    assert launch["spark.sql.shuffle.partitions"] == "4"
    # other packages (or exclusions) are another resolution
    assert use_recorded_jars({**conf, "spark.jars.packages": "org.example:other:1.0"})["spark.jars.packages"]


def test_a_missing_jar_or_the_users_own_jars_mean_resolving_again(tmp_path: Path) -> None:
    conf = delta_spark_conf()
    jars = _jars(tmp_path, "a.jar", "b.jar")
    record_resolution(conf, ",".join(j.as_uri() for j in jars))
    jars[1].unlink()
    assert use_recorded_jars(conf) is conf
    own = {**conf, "spark.jars": "/opt/own.jar"}
    assert use_recorded_jars(own) is own
