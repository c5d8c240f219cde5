"""featurelake's feature store: Delta feature tables, Feast registration, point-in-time training sets.

The notebook entry point is :class:`FeatureStoreClient`::

    from featurestore import FeatureLookup, FeatureStoreClient

    fs = FeatureStoreClient()          # ./featurelake.yaml (or $FEATURELAKE_CONFIG), the active SparkSession

Both names are imported on first use, so ``import featurestore`` loads neither Spark nor MLflow.
The client lives in :mod:`inference.client` because it also logs and scores models (the
``inference`` layer, above this one); this facade is the one import that runs upward, and the
import-linter contract in setup.cfg names it.
"""

from __future__ import annotations

from typing import Any

__all__ = ["FeatureLookup", "FeatureStoreClient"]


def __getattr__(name: str) -> Any:
    """Import a public name's module on first use (PEP 562); the imports stay visible to import-linter."""
    if name == "FeatureStoreClient":
        from inference.client import FeatureStoreClient  # the public facade (setup.cfg's one ignored import)

        return FeatureStoreClient
    if name == "FeatureLookup":
        from featurestore.training_set import FeatureLookup

        return FeatureLookup
    raise AttributeError(f"module 'featurestore' has no attribute {name!r}")
