"""What ``featurelake serve`` is serving: one small JSON file per running server.

``serve`` writes ``serving/HOSTNAME_PORT.json`` next to the project's configuration file when it
starts, rewrites it when it moves to another model version, and removes it when it stops; ``models
list`` and the report's model page read the folder for their "Serving" column. A server killed
without a chance to clean up (``kill -9``) leaves its file behind: a record of this machine whose
process is gone is skipped when read.

    record = ServingRecord.now("churn_model", 3, "models:/churn_model@champion", "127.0.0.1", 5001, 30.0)
    write_record(config, record)
    serving_urls(read_records(config), "churn_model", 3)   # ['http://127.0.0.1:5001']
"""

from __future__ import annotations

import json
import logging
import os
import socket
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from featurestore.core.config import Config

logger = logging.getLogger(__name__)

RECORDS_FOLDER = "serving"


@dataclass(frozen=True)
class ServingRecord:
    """One running server: the model version it serves and where."""

    model_name: str
    model_version: int
    model_uri: str          # the reference it was started with (models:/NAME@champion)
    host: str
    port: int
    hostname: str           # the machine
    pid: int
    started_at: str         # ISO 8601, UTC
    reload_interval: float  # seconds between checks of the reference; 0: never

    @property
    def url(self) -> str:
        """The server's base URL (``/invocations``, ``/ping`` below it)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @classmethod
    def now(cls, model_name: str, model_version: int, model_uri: str, host: str, port: int,
            reload_interval: float) -> "ServingRecord":
        """A record of this process starting to serve now."""
        return cls(model_name, int(model_version), model_uri, host, int(port), socket.gethostname(), os.getpid(),
                   datetime.now(timezone.utc).isoformat(timespec="seconds"), float(reload_interval))

    def serving_version(self, version: int) -> "ServingRecord":
        """This record after the server moved to ``version``."""
        return replace(self, model_version=int(version))

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data, with the URL."""
        return {**asdict(self), "url": self.url}


def records_folder(config: Config) -> Path:
    """The folder of the records: ``serving`` next to the configuration file."""
    return Path(config.base_dir) / RECORDS_FOLDER


def _record_path(config: Config, record: ServingRecord) -> Path:
    return records_folder(config) / f"{record.hostname}_{record.port}.json"


def write_record(config: Config, record: ServingRecord) -> Path:
    """Write (or replace) ``record``'s file; readers never see a half-written file."""
    path = _record_path(config, record)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    partial.write_text(json.dumps(record.to_dict(), indent=2), encoding="utf-8")
    os.replace(partial, path)
    return path


def remove_record(config: Config, record: ServingRecord) -> None:
    """Remove ``record``'s file (when it is still this process's)."""
    path = _record_path(config, record)
    current = _read(path)
    if current is not None and current.pid == record.pid:
        path.unlink(missing_ok=True)


def _read(path: Path) -> ServingRecord | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        data.pop("url", None)
        return ServingRecord(**data)
    except FileNotFoundError:
        return None
    except (OSError, ValueError, TypeError) as exc:
        logger.warning("serving record %s is unreadable, skipped: %s", path, exc)
        return None


def _alive(record: ServingRecord) -> bool:
    """False for a record of this machine whose process is gone (a record of another machine counts)."""
    if record.hostname != socket.gethostname():
        return True
    try:
        os.kill(record.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def read_records(config: Config) -> list[ServingRecord]:
    """The records of the servers running now, by model name, version and URL."""
    folder = records_folder(config)
    if not folder.is_dir():
        return []
    records = [r for r in (_read(p) for p in sorted(folder.glob("*.json"))) if r is not None and _alive(r)]
    return sorted(records, key=lambda r: (r.model_name, r.model_version, r.url))


def serving_urls(records: list[ServingRecord], model_name: str, version: int | str) -> list[str]:
    """The URLs serving ``model_name`` version ``version``."""
    return [r.url for r in records if r.model_name == model_name and str(r.model_version) == str(version)]
