"""Model registry operations on the MLflow Model Registry, with featurelake's rules enforced.

Stages (``Staging``, ``Production``) and aliases (``champion``, ``challenger``) are both
supported: a version loads as ``models:/NAME/Production`` and as ``models:/NAME@champion``.
Rules MLflow itself does not enforce: a Staging or Production version cannot be deleted,
moving a version to a stage archives the version previously in it, and a feature table that
a Staging or Production version's training-set spec names cannot be dropped.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any

from featurestore.core.config import Config
from featurestore.core.errors import BadInputError, ConflictError, NotFoundError
from featurestore.core.identifiers import validate_identifier
from featurestore.training_set import TrainingSetSpec
from inference.stages import PROTECTED_STAGES, check_stage
from inference.tracking import client as mlflow_client
from inference.tracking import mlflow_call

logger = logging.getLogger(__name__)


@dataclass
class VersionInfo:
    """One registered model version."""

    name: str
    version: str
    stage: str
    aliases: list[str]
    last_modified: str | None
    created: str | None
    tags: dict[str, str]
    run_id: str | None
    description: str
    status: str
    source: str | None
    signature: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return plain JSON-ready data."""
        return asdict(self)


@dataclass
class ModelInfo:
    """One registered model and its versions (newest first)."""

    name: str
    description: str
    tags: dict[str, str]
    aliases: dict[str, str]
    last_modified: str | None
    versions: list[VersionInfo] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Return plain JSON-ready data."""
        return asdict(self)


def _iso(millis: int | None) -> str | None:
    if not millis:
        return None
    return datetime.fromtimestamp(millis / 1000, tz=timezone.utc).isoformat(timespec="seconds")


def _version_info(mv: Any, signature: dict | None = None) -> VersionInfo:
    return VersionInfo(
        name=mv.name, version=str(mv.version), stage=mv.current_stage or "None",
        aliases=sorted(getattr(mv, "aliases", []) or []), last_modified=_iso(mv.last_updated_timestamp),
        created=_iso(mv.creation_timestamp), tags=dict(mv.tags or {}), run_id=mv.run_id,
        description=mv.description or "", status=str(mv.status), source=mv.source, signature=signature,
    )


def _with_aliases(info: VersionInfo, model: Any) -> VersionInfo:
    """Fill a version's aliases from its model (search results of some stores leave them empty)."""
    aliases = getattr(model, "aliases", {}) or {}
    info.aliases = sorted(set(info.aliases) | {a for a, v in aliases.items() if str(v) == info.version})
    return info


def get_registered_model(config: Config, name: str) -> Any:
    """Return MLflow's RegisteredModel ``name``; NotFoundError if it does not exist."""
    validate_identifier(name, "model name")
    client = mlflow_client(config)
    return mlflow_call(lambda: client.get_registered_model(name), f"registered model {name!r}",
                       missing=f"model {name!r} is not registered in the model registry")


def search_versions(config: Config, name: str) -> list[Any]:
    """Return every version of model ``name``, newest first (the model must exist)."""
    get_registered_model(config, name)
    client = mlflow_client(config)
    versions = mlflow_call(lambda: client.search_model_versions(f"name = '{name}'"),
                           f"versions of model {name!r}")
    return sorted(versions, key=lambda v: int(v.version), reverse=True)


def get_version(config: Config, name: str, version: str | int) -> Any:
    """Return MLflow's ModelVersion; NotFoundError naming model and version if absent."""
    get_registered_model(config, name)
    version = str(version)
    if not version.isdigit():
        raise BadInputError(f"model {name!r}: version must be a number, got {version!r}")
    client = mlflow_client(config)
    return mlflow_call(lambda: client.get_model_version(name, version), f"version {version} of model {name!r}",
                       missing=f"model {name!r} has no version {version}")


def version_by_alias(config: Config, name: str, alias: str) -> Any:
    """Return the ModelVersion that ``alias`` of model ``name`` points at; NotFoundError if none."""
    model = get_registered_model(config, name)
    if alias not in (getattr(model, "aliases", {}) or {}):
        raise NotFoundError(f"model {name!r} has no alias {alias!r}")
    client = mlflow_client(config)
    return mlflow_call(lambda: client.get_model_version_by_alias(name, alias), f"alias {alias!r} of model {name!r}",
                       missing=f"model {name!r} has no alias {alias!r}")


def versions_in_stage(config: Config, name: str, stage: str) -> list[Any]:
    """Return the versions of ``name`` currently in ``stage``, newest first.

    MLflow cannot filter ``search_model_versions`` by stage, so this filters client-side.
    """
    stage = check_stage(stage)
    return [v for v in search_versions(config, name) if (v.current_stage or "None") == stage]


def newest_version(config: Config, name: str, stage: str | None = None) -> Any:
    """Return the newest version of ``name``, or its newest version in ``stage`` when given.

    Raises:
        NotFoundError: the model does not exist, or has no (such) version.
    """
    versions = versions_in_stage(config, name, stage) if stage else search_versions(config, name)
    if not versions:
        raise NotFoundError(f"model {name!r} has " + (f"no version in stage {check_stage(stage)}" if stage
                                                      else "no versions"))
    return versions[0]


def production_version(config: Config, name: str) -> Any | None:
    """Return the current Production version of ``name`` (the newest one), or None."""
    versions = versions_in_stage(config, name, "Production")
    return versions[0] if versions else None


def list_models(config: Config, name: str | None = None) -> list[ModelInfo]:
    """List registered models (or only ``name``) with all their versions."""
    client = mlflow_client(config)
    if name is not None:
        models = [get_registered_model(config, name)]
    else:
        models = mlflow_call(lambda: list(client.search_registered_models(max_results=1000)), "registered models")
    infos = []
    for model in sorted(models, key=lambda m: m.name):
        versions = search_versions(config, model.name)
        infos.append(ModelInfo(
            name=model.name, description=model.description or "", tags=dict(model.tags or {}),
            aliases=dict(getattr(model, "aliases", {}) or {}), last_modified=_iso(model.last_updated_timestamp),
            versions=[_with_aliases(_version_info(v), model) for v in versions],
        ))
    return infos


def show_version(config: Config, name: str, version: str | int | None = None) -> VersionInfo:
    """Return one version (the newest when ``version`` is None) with its signature."""
    import mlflow

    mv = newest_version(config, name) if version is None else get_version(config, name, version)
    signature = None
    try:
        info = mlflow.models.get_model_info(f"models:/{name}/{mv.version}")
        if info.signature is not None:
            signature = info.signature.to_dict()
    except Exception as exc:  # artifacts may be gone; the registry entry is still worth showing
        logger.warning("model %s version %s: signature unavailable: %s", name, mv.version, exc)
    return _with_aliases(_version_info(mv, signature), get_registered_model(config, name))


def set_tag(config: Config, name: str, key: str, value: str, version: str | int | None = None) -> None:
    """Set a tag on model ``name`` or on one of its versions."""
    client = mlflow_client(config)
    if not key:
        raise BadInputError("tag key must not be empty")
    if version is None:
        get_registered_model(config, name)
        mlflow_call(lambda: client.set_registered_model_tag(name, key, value), f"tag {key!r} of model {name!r}")
    else:
        get_version(config, name, version)
        mlflow_call(lambda: client.set_model_version_tag(name, str(version), key, value),
                    f"tag {key!r} of model {name!r} version {version}")


def set_description(config: Config, name: str, description: str, version: str | int | None = None) -> None:
    """Set the description of model ``name`` or of one of its versions."""
    client = mlflow_client(config)
    if version is None:
        get_registered_model(config, name)
        mlflow_call(lambda: client.update_registered_model(name, description=description),
                    f"description of model {name!r}")
    else:
        get_version(config, name, version)
        mlflow_call(lambda: client.update_model_version(name, str(version), description=description),
                    f"description of model {name!r} version {version}")


def transition(config: Config, name: str, version: str | int, stage: str, archive_existing: bool = True) -> VersionInfo:
    """Move a version to ``stage``; with ``archive_existing`` the versions already there are archived.

    Raises:
        NotFoundError: model or version does not exist.
        BadInputError: unknown stage.
    """
    import warnings

    stage = check_stage(stage)
    mv = get_version(config, name, version)
    client = mlflow_client(config)
    archive = archive_existing and stage in PROTECTED_STAGES
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # stages are deprecated in MLflow 3 but still work
        updated = mlflow_call(
            lambda: client.transition_model_version_stage(name, mv.version, stage,
                                                          archive_existing_versions=archive),
            f"transition of model {name!r} version {mv.version} to {stage}",
        )
    logger.debug("model %s version %s: %s -> %s%s", name, mv.version, mv.current_stage, stage,
                 " (previous versions archived)" if archive else "")
    if archive:
        keep_one_in_stage(config, name, stage, str(mv.version))
    return _version_info(updated)


def keep_one_in_stage(config: Config, name: str, stage: str, ours: str) -> None:
    """Settle a race between concurrent transitions: leave exactly one version in ``stage``.

    Two transitions that run at once can each archive the other's predecessor and both land
    in the stage. Every racer applies the same rule afterwards - the highest version stays,
    the others are archived - so they converge on one version whatever the interleaving.

    Raises:
        ConflictError: when ``ours`` lost the race (it is archived again).
    """
    import warnings

    in_stage = versions_in_stage(config, name, stage)
    if len(in_stage) <= 1:
        return
    keep = max(in_stage, key=lambda v: int(v.version))
    client = mlflow_client(config)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        for other in in_stage:
            if other.version != keep.version:
                mlflow_call(lambda v=other.version: client.transition_model_version_stage(name, v, "Archived"),
                            f"archiving model {name!r} version {other.version}")
    logger.warning("model %s: concurrent transitions to %s; kept version %s", name, stage, keep.version)
    if str(keep.version) != ours:
        raise ConflictError(
            f"model {name!r}: a concurrent transition put version {keep.version} in {stage}; "
            f"version {ours} was archived"
        )


def set_alias(config: Config, name: str, alias: str, version: str | int) -> None:
    """Point ``alias`` (e.g. ``champion``) of model ``name`` at ``version`` (moving it if set)."""
    validate_identifier(alias, "alias")
    mv = get_version(config, name, version)
    client = mlflow_client(config)
    mlflow_call(lambda: client.set_registered_model_alias(name, alias, mv.version),
                f"alias {alias!r} of model {name!r}")
    logger.debug("model %s: alias %s -> version %s", name, alias, mv.version)


def delete_alias(config: Config, name: str, alias: str) -> None:
    """Remove ``alias`` from model ``name``."""
    validate_identifier(alias, "alias")
    model = get_registered_model(config, name)
    if alias not in (getattr(model, "aliases", {}) or {}):
        raise NotFoundError(f"model {name!r} has no alias {alias!r}")
    client = mlflow_client(config)
    mlflow_call(lambda: client.delete_registered_model_alias(name, alias), f"alias {alias!r} of model {name!r}")


def delete_version(config: Config, name: str, version: str | int) -> None:
    """Delete a version, refusing one in Staging or Production (archive it first).

    Raises:
        ConflictError: the version is in Staging or Production.
    """
    mv = get_version(config, name, version)
    if mv.current_stage in PROTECTED_STAGES:
        raise ConflictError(
            f"model {name!r} version {mv.version} is in {mv.current_stage} and cannot be deleted; "
            "transition it to Archived first"
        )
    client = mlflow_client(config)
    mlflow_call(lambda: client.delete_model_version(name, mv.version), f"version {mv.version} of model {name!r}")
    logger.info("deleted model %s version %s", name, mv.version)


@dataclass(frozen=True)
class ProtectedSpec:
    """The training-set spec of a Staging or Production model version."""

    model: str
    version: str
    stage: str
    spec: TrainingSetSpec

    @property
    def label(self) -> str:
        """``"NAME version V (STAGE)"``."""
        return f"{self.model} version {self.version} ({self.stage})"


def protected_specs(config: Config) -> list[ProtectedSpec]:
    """Return the training-set specs of every Staging and Production model version, by model and version.

    A version logged without a training set has no spec and is left out.

    Example::

        [p.label for p in protected_specs(config)]    # ['churn_model version 3 (Production)']
    """
    from inference.tracking import load_spec

    client = mlflow_client(config)
    models = mlflow_call(lambda: list(client.search_registered_models(max_results=1000)), "registered models")
    found = []
    for model in sorted(models, key=lambda m: m.name):
        for mv in search_versions(config, model.name):
            if (mv.current_stage or "None") not in PROTECTED_STAGES or not mv.run_id:
                continue
            try:
                spec = load_spec(mv.run_id)
            except NotFoundError:  # a version logged without a training set reads no feature table
                continue
            found.append(ProtectedSpec(model.name, str(mv.version), mv.current_stage, spec))
    return found


def versions_reading_table(config: Config, table: str) -> list[str]:
    """Return the Staging and Production versions whose training-set spec looks features up in ``table``,
    as ``"NAME version V (STAGE)"``.

    Example::

        versions_reading_table(config, "customer_spend")    # ['churn_model version 3 (Production)']
    """
    return [p.label for p in protected_specs(config)
            if any(lookup.get("table") == table for lookup in p.spec.lookups)]


def drop_feature_table(spark: Any, config: Config, name: str) -> None:
    """Drop feature table ``name`` (Delta table and Feast registration) unless a Staging or
    Production model version reads it.

    Example::

        drop_feature_table(spark, config, "customer_spend")

    Raises:
        ConflictError: a Staging or Production version's training-set spec names the table
            (nothing is changed; archive those versions first).
        NotFoundError: no feature table ``name``.
    """
    from featurestore.build import drop_table
    from featurestore.catalog import describe_table
    from featurestore.delta_reader import session_reader

    describe_table(session_reader(spark, config), config, name)  # an unknown table is not found, first
    readers = versions_reading_table(config, name)
    if readers:
        raise ConflictError(f"feature table {name!r} cannot be dropped: the training-set spec of "
                            f"{', '.join(readers)} looks features up in it; archive those versions first")
    drop_table(spark, config, name)


def search_models(config: Config, filter_string: str = "") -> list[ModelInfo]:
    """The registered models matching ``filter_string`` in MLflow's search syntax, with their versions.

    >>> [m.name for m in search_models(config, "name LIKE 'churn%' AND tags.team = 'risk'")]  # doctest: +SKIP
    ['churn_model']

    MLflow's syntax: ``name`` or ``tags.KEY`` compared with ``=``, ``!=``, ``LIKE`` or ``ILIKE``
    (``%`` matches any text), clauses joined by ``AND`` (no ``OR``).

    Raises:
        BadInputError: MLflow cannot parse the filter.
    """
    client = mlflow_client(config)
    found = mlflow_call(lambda: list(client.search_registered_models(filter_string=filter_string, max_results=1000)),
                        f"model search {filter_string!r}")
    return [info for model in sorted(found, key=lambda m: m.name) for info in list_models(config, model.name)]
