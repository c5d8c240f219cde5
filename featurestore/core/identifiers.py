"""Validation and quoting of names that end up in SQL or in paths."""

from __future__ import annotations

import re

from featurestore.core.errors import BadInputError

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")


def validate_identifier(name: object, what: str = "name") -> str:
    """Return ``name`` if it is a plain identifier (letters, digits, underscore).

    Names of tables, features, keys and models become SQL identifiers and path
    components, so anything else (quotes, backticks, semicolons, spaces, path
    separators, non-ASCII) is refused.

    >>> validate_identifier("customer_features", "table")
    'customer_features'
    """
    if not isinstance(name, str) or not _IDENTIFIER.match(name):
        raise BadInputError(
            f"invalid {what} {name!r}: use letters, digits and underscores, "
            "starting with a letter or underscore (at most 128 characters)"
        )
    return name


def quote_identifier(name: str) -> str:
    """Quote a validated identifier for Spark SQL (backticks)."""
    return f"`{validate_identifier(name)}`"


def quote_path(path: str) -> str:
    """Quote a filesystem path as a ``delta.`path``` table reference for Spark SQL."""
    if "`" in path:
        raise BadInputError(f"invalid table path {path!r}: backticks are not allowed")
    return f"delta.`{path}`"
