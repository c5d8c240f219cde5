"""Registration of feature tables in a real Feast feature repository.

The repository holds ``feature_store.yaml`` (Spark offline store over the Delta tables,
SQLite online store) and the registry file. Definitions are applied through Feast's own
``FeatureStore.apply``, so Feast's CLI (``feast -c REPO feature-views list``) and SDK see
exactly what featurelake registered.
"""

from __future__ import annotations

import logging
from pathlib import Path

import yaml

from featurestore.core.config import Config
from featurestore.definitions import FeatureTable
from featurestore.core.errors import DependencyUnavailableError
from featurestore.feast_import import import_feast
from featurestore.runtime.spark_session import LOCAL_DEFAULTS, delta_spark_conf

logger = logging.getLogger(__name__)

REGISTRY_FILE = "data/registry.db"
ONLINE_STORE_FILE = "data/online_store.db"
MANAGED_BY_TAG = "managed_by"


def repo_config(config: Config) -> dict:
    """Return the content of ``feature_store.yaml`` for this project."""
    spark_conf = {
        "spark.master": config.spark.master,
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.shuffle.partitions": "4",
        "spark.ui.enabled": "false",
        # A session Feast starts itself (feast materialize, FeatureStore in a fresh process)
        # gets featurelake's local defaults too: Delta's snapshot in 2 partitions, not 50.
        # get_historical_features of the demo's labels with and without them:
        # benchmarks/results/reruns/figures_from_commits.md.
        **(LOCAL_DEFAULTS if config.spark.master.startswith("local") else {}),
        **delta_spark_conf(),
    }
    return {
        "project": config.feast.project,
        "registry": REGISTRY_FILE,
        "provider": "local",
        "offline_store": {"type": "spark", "spark_conf": spark_conf},
        # Spark compute engine: materialization stays distributed (executors write to the
        # online store through mapInArrow); Feast's default local engine collects to the driver.
        "batch_engine": {"type": "spark.engine", "spark_conf": spark_conf},
        "online_store": dict(config.feast.online_store) or {"type": "sqlite", "path": ONLINE_STORE_FILE},
        "entity_key_serialization_version": 3,
    }


def ensure_repo(config: Config) -> Path:
    """Create (or update) the Feast repository folder and its ``feature_store.yaml``."""
    repo = Path(config.feast.repo_path)
    (repo / "data").mkdir(parents=True, exist_ok=True)
    target = repo / "feature_store.yaml"
    text = yaml.safe_dump(repo_config(config), sort_keys=False)
    if not target.exists() or target.read_text(encoding="utf-8") != text:
        target.write_text(text, encoding="utf-8")
    return repo


def feature_store(config: Config):
    """Return Feast's ``FeatureStore`` for the project's repository."""
    FeatureStore = import_feast().FeatureStore

    repo = ensure_repo(config)
    try:
        return FeatureStore(repo_path=str(repo))
    except Exception as exc:  # Feast raises many types for a bad repo or registry
        raise DependencyUnavailableError(f"Feast repository {repo} cannot be opened: {exc}") from exc


def _feast_types(dtype: str):
    import_feast()
    from feast import ValueType
    from feast.types import Bool, Float32, Float64, Int32, Int64, String, UnixTimestamp

    return {
        "string": (String, ValueType.STRING),
        "boolean": (Bool, ValueType.BOOL),
        "int": (Int32, ValueType.INT32),
        "bigint": (Int64, ValueType.INT64),
        "float": (Float32, ValueType.FLOAT),
        "double": (Float64, ValueType.DOUBLE),
        "date": (UnixTimestamp, ValueType.UNIX_TIMESTAMP),
        "timestamp": (UnixTimestamp, ValueType.UNIX_TIMESTAMP),
    }[dtype]


def feast_definitions(table: FeatureTable, path: str) -> list:
    """Return Feast's Entity objects, SparkSource and FeatureView for ``table`` stored at ``path``."""
    import_feast()
    from feast import Entity, FeatureView, Field
    from feast.infra.offline_stores.contrib.spark_offline_store.spark_source import SparkSource
    from feast.table_format import DeltaFormat

    entities = [
        Entity(name=key.name, join_keys=[key.name], value_type=_feast_types(key.dtype)[1],
               description=key.description)
        for key in table.primary_keys
    ]
    source = SparkSource(
        name=f"{table.name}_source",
        path=path,
        table_format=DeltaFormat(),
        timestamp_field=table.timestamp_key,
        description=f"Delta table of feature table {table.name}",
        owner=table.owner,
    )
    tags = {
        **{str(k): str(v) for k, v in table.tags.items()},
        MANAGED_BY_TAG: "featurelake",
        "notebook_url": table.notebook_url,
        "sources": ",".join(s.path for s in table.sources),
        "delta_path": path,
    }
    view = FeatureView(
        name=table.name,
        entities=entities,
        schema=[Field(name=f.name, dtype=_feast_types(f.dtype)[0], description=f.description)
                for f in table.features],
        source=source,
        ttl=table.ttl,
        online=True,
        description=table.description,
        owner=table.owner,
        tags=tags,
    )
    return [*entities, source, view]


def check_registry(config: Config) -> None:
    """Fail early, with :class:`DependencyUnavailableError`, when the Feast registry cannot be read."""
    store = feature_store(config)
    try:
        store.list_feature_views()
    except Exception as exc:
        raise DependencyUnavailableError(
            f"Feast registry of {config.feast.repo_path} cannot be read: {exc}"
        ) from exc


def register_tables(config: Config, tables: list[FeatureTable]) -> None:
    """Apply the Feast definitions of ``tables`` to the project's feature repository."""
    objects = []
    for table in tables:
        objects += feast_definitions(table, config.table_path(table.name))
    store = feature_store(config)
    try:
        store.apply(objects)
    except Exception as exc:
        raise DependencyUnavailableError(
            f"Feast registry of {config.feast.repo_path} could not be updated: {exc}"
        ) from exc
    logger.info("registered %d feature view(s) in Feast repo %s: %s", len(tables), config.feast.repo_path,
                ", ".join(t.name for t in tables))


def unregister_table(config: Config, name: str) -> bool:
    """Remove feature table ``name`` from the project's Feast repository: its feature view, its data
    source, its online-store table, and the entities no other feature view uses.

    Returns False when Feast had no feature view of that name (nothing to remove).

    Example::

        unregister_table(config, "customer_spend")
    """
    store = feature_store(config)
    try:
        views = {view.name: view for view in store.list_feature_views()}
        view = views.pop(name, None)
        if view is None:
            return False
        used = {entity for other in views.values() for entity in other.entities}
        entities = [store.get_entity(entity) for entity in view.entities if entity not in used]
        store.apply([], objects_to_delete=[view, view.batch_source, *entities], partial=False)
    except Exception as exc:
        raise DependencyUnavailableError(
            f"Feast registry of {config.feast.repo_path}: feature view {name!r} could not be removed: {exc}"
        ) from exc
    logger.info("removed feature view %s from Feast repo %s", name, config.feast.repo_path)
    return True
