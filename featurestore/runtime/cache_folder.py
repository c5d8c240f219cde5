"""featurelake's per-user cache folder (class-data archive, recorded jar resolutions, Spark's warehouse folder)."""

from __future__ import annotations

import os
from pathlib import Path

CACHE_DIR_ENV = "FEATURELAKE_CACHE_DIR"


def cache_dir() -> Path:
    """Return featurelake's cache folder: ``$FEATURELAKE_CACHE_DIR``, else ``$XDG_CACHE_HOME/featurelake``."""
    if os.environ.get(CACHE_DIR_ENV):
        return Path(os.environ[CACHE_DIR_ENV])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "featurelake"
