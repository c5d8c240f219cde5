"""Import Feast without typeguard's import-time instrumentation.

Feast decorates its classes with typeguard's ``@typechecked``, which re-parses and recompiles
every decorated function while ``import feast`` runs: several times the CPU of the import with
the decorator made a no-op (``python -X importtime``; figures in
benchmarks/results/reruns/figures_from_commits.md). On two cores that
CPU is taken from the Spark job running beside it. The checks only turn a wrongly typed
argument into ``TypeCheckError``; Feast never relies on them, and featurelake's own calls are
covered by its tests. The original decorator is put back once Feast is imported, so other
code in the process is not affected.
"""

from __future__ import annotations

import sys
import threading
from types import ModuleType
from typing import Any

_lock = threading.Lock()


def _unchecked(target: Any = None, **_options: Any) -> Any:
    """Stand-in for ``typeguard.typechecked``: returns the target unchanged (also as a factory)."""
    if target is None:
        return lambda decorated: decorated
    return target


def import_feast() -> ModuleType:
    """Return the ``feast`` module, importing it (uninstrumented) on first use."""
    with _lock:
        if "feast" in sys.modules:
            return sys.modules["feast"]
        import typeguard

        original = typeguard.typechecked
        typeguard.typechecked = _unchecked
        try:
            import feast
        finally:
            typeguard.typechecked = original
        return feast
