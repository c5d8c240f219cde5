"""Feature-table metadata as Delta table properties, readable by any Delta reader.

Every property is prefixed ``featurelake.``; the table description is also the Delta table
comment and each feature's description is its column comment.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Mapping

if TYPE_CHECKING:
    from featurestore.definitions import FeatureTable

PREFIX = "featurelake."
KIND_FEATURE_TABLE = "feature_table"


def definition_properties(table: FeatureTable) -> dict[str, str]:
    """Return the table properties that document ``table`` (everything but who created it)."""
    return {
        f"{PREFIX}kind": KIND_FEATURE_TABLE,
        f"{PREFIX}name": table.name,
        f"{PREFIX}primary_keys": ",".join(table.key_names),
        f"{PREFIX}timestamp_key": table.timestamp_key,
        f"{PREFIX}owner": table.owner,
        f"{PREFIX}description": table.description,
        f"{PREFIX}notebook_url": table.notebook_url,
        f"{PREFIX}sources": json.dumps(
            [{"name": s.name, "path": s.path, "format": s.format} for s in table.sources]
        ),
        f"{PREFIX}tags": json.dumps(dict(table.tags), sort_keys=True),
        f"{PREFIX}ttl_seconds": "" if table.ttl is None else str(int(table.ttl.total_seconds())),
    }


def column_comments(table: FeatureTable) -> dict[str, str]:
    """Return the column comments (descriptions) of every column of ``table``."""
    return {c.name: c.description for c in table.columns}


def parse_properties(properties: Mapping[str, str]) -> dict[str, object]:
    """Turn ``featurelake.*`` table properties back into plain values (missing ones as None)."""

    def get(key: str) -> str | None:
        value = properties.get(PREFIX + key)
        return value if value not in (None, "") else None

    def get_json(key: str, default: object) -> object:
        raw = get(key)
        if raw is None:
            return default
        try:
            return json.loads(raw)
        except json.JSONDecodeError:
            return default

    keys = get("primary_keys")
    ttl = get("ttl_seconds")
    return {
        "kind": get("kind"),
        "primary_keys": keys.split(",") if keys else [],
        "timestamp_key": get("timestamp_key"),
        "owner": get("owner"),
        "description": get("description"),
        "notebook_url": get("notebook_url"),
        "created_by": get("created_by"),
        "sources": get_json("sources", []),
        "tags": get_json("tags", {}),
        "ttl_seconds": int(ttl) if ttl and ttl.isdigit() else None,
    }
