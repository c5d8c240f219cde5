"""Remember where Spark's Ivy resolution put the Delta jars, so later local sessions skip it.

Every local session resolves ``spark.jars.packages`` with Ivy before the driver starts, even
when all jars are in the local cache (its cost: benchmarks/results/startup.md). After one
resolution the local jar paths are recorded in featurelake's cache folder, keyed by the
packages, exclusions and Ivy settings; a later session with the same three values gets them
as ``spark.jars`` instead, as long as every jar is still on disk.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path
from urllib.parse import unquote, urlparse

from featurestore.runtime.cache_folder import cache_dir

logger = logging.getLogger(__name__)

RESOLUTION_KEYS = ("spark.jars.packages", "spark.jars.excludes", "spark.jars.ivySettings")


def _record_path(conf: dict[str, str]) -> Path:
    identity = "\n".join(conf.get(key, "") for key in RESOLUTION_KEYS)
    return cache_dir() / f"resolved-jars-{hashlib.sha256(identity.encode()).hexdigest()[:16]}.txt"


def _resolves_packages(conf: dict[str, str]) -> bool:
    """True when the session would resolve packages and sets no jars of its own."""
    return bool(conf.get("spark.jars.packages")) and not conf.get("spark.jars")


def use_recorded_jars(conf: dict[str, str]) -> dict[str, str]:
    """Return ``conf`` with the recorded jars as ``spark.jars`` in place of the packages, if all still exist."""
    if not _resolves_packages(conf):
        return conf
    record = _record_path(conf)
    if not record.is_file():
        return conf
    jars = [Path(line) for line in record.read_text(encoding="utf-8").splitlines() if line]
    if not jars or not all(jar.is_file() for jar in jars):
        return conf
    replaced = {key: value for key, value in conf.items() if key not in RESOLUTION_KEYS}
    replaced["spark.jars"] = ",".join(jar.as_uri() for jar in jars)
    return replaced


def record_resolution(conf: dict[str, str], resolved_jars: str) -> None:
    """Record the local jars that resolving ``conf``'s packages gave (``spark.jars`` of the new session)."""
    if not _resolves_packages(conf):
        return
    paths = [unquote(urlparse(uri).path) if uri.startswith("file:") else uri
             for uri in resolved_jars.split(",") if uri]
    if not paths or not all(Path(p).is_file() for p in paths):
        return
    record = _record_path(conf)
    try:
        record.parent.mkdir(parents=True, exist_ok=True)
        staged = record.with_name(f"{record.name}.{os.getpid()}.tmp")
        staged.write_text("\n".join(paths) + "\n", encoding="utf-8")
        os.replace(staged, record)
    except OSError as exc:  # a read-only home folder only costs the next session its resolution
        logger.debug("could not record the resolved jars in %s: %s", record, exc)
