"""Model references (``models:/NAME/Production``, ``models:/NAME@champion``, ``models:/NAME/3``)
and their resolution to ONE concrete registry version.

A batch job resolves its reference once, at the start, and uses the returned
``models:/NAME/VERSION`` URI for the whole run, so a promotion that happens while the job
runs cannot mix two model versions in one batch.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field

from featurestore.core.config import Config
from featurestore.core.errors import BadInputError
from inference import registry
from inference.stages import STAGES

logger = logging.getLogger(__name__)

_NAME = r"[A-Za-z0-9_][A-Za-z0-9_.\-]{0,255}"
_URI = re.compile(rf"^models:/(?P<name>{_NAME})(?:/(?P<selector>[A-Za-z0-9_\-]+)|@(?P<alias>[A-Za-z0-9_\-]+))$")
_MODEL_NAME = re.compile(rf"^{_NAME}$")


@dataclass(frozen=True)
class ModelReference:
    """A parsed model reference: exactly one of ``stage``, ``alias``, ``version``, ``latest``."""

    name: str
    stage: str | None = None
    alias: str | None = None
    version: int | None = None
    latest: bool = False

    def __str__(self) -> str:
        if self.alias is not None:
            return f"models:/{self.name}@{self.alias}"
        if self.stage is not None:
            return f"models:/{self.name}/{self.stage}"
        if self.version is not None:
            return f"models:/{self.name}/{self.version}"
        return f"models:/{self.name}/latest"


@dataclass(frozen=True)
class ResolvedModel:
    """One concrete registry version, as the reference resolved to at the start of a run."""

    name: str
    version: int
    run_id: str | None
    source: str
    reference: str
    stage: str | None = None
    aliases: tuple[str, ...] = field(default_factory=tuple)

    @property
    def uri(self) -> str:
        """The version-pinned URI (``models:/NAME/VERSION``)."""
        return f"models:/{self.name}/{self.version}"


def parse_model_uri(uri: str) -> ModelReference:
    """Parse ``models:/NAME/STAGE``, ``models:/NAME@ALIAS``, ``models:/NAME/VERSION`` or ``models:/NAME/latest``.

    Raises:
        BadInputError: when ``uri`` is not such a reference (the message shows the accepted forms).
    """
    match = _URI.match(uri.strip()) if isinstance(uri, str) else None
    if match is None:
        raise BadInputError(
            f"cannot parse model reference {uri!r}: expected models:/NAME/Production, "
            "models:/NAME/Staging, models:/NAME@ALIAS, models:/NAME/VERSION or models:/NAME/latest"
        )
    name, selector, alias = match.group("name"), match.group("selector"), match.group("alias")
    if alias is not None:
        return ModelReference(name, alias=alias)
    assert selector is not None
    if selector.isdigit():
        if int(selector) < 1:
            raise BadInputError(f"model reference {uri!r}: versions start at 1")
        return ModelReference(name, version=int(selector))
    if selector.lower() == "latest":
        return ModelReference(name, latest=True)
    stages = {s.lower(): s for s in STAGES}
    if selector.lower() not in stages:
        raise BadInputError(
            f"model reference {uri!r}: unknown stage {selector!r} (one of {', '.join(STAGES)}, "
            "a version number, 'latest', or use @ALIAS for an alias)"
        )
    return ModelReference(name, stage=stages[selector.lower()])


def validate_model_name(name: str) -> str:
    """Return ``name`` if it is a model name a reference accepts (letters, digits, ``_ . -``)."""
    if not isinstance(name, str) or not _MODEL_NAME.match(name):
        raise BadInputError(f"invalid model name {name!r}: use letters, digits and _ . - (at most 256, "
                            "starting with a letter, digit or _)")
    return name


def resolve_model(config: Config, reference: str | ModelReference) -> ResolvedModel:
    """Resolve ``reference`` to one concrete model version of the registry.

    A stage or ``latest`` resolves to the newest version (in the stage); the registry is read
    through :mod:`inference.registry`, the one implementation of these lookups.

    Example: ``resolve_model(config, "models:/churn_model@champion").uri`` -> ``"models:/churn_model/4"``.

    Raises:
        BadInputError: the reference does not parse.
        NotFoundError: the model, the version or alias, or a version in the stage does not exist.
        DependencyUnavailableError: the registry cannot be read.
    """
    ref = parse_model_uri(reference) if isinstance(reference, str) else reference
    if ref.alias is not None:
        mv = registry.version_by_alias(config, ref.name, ref.alias)
    elif ref.version is not None:
        mv = registry.get_version(config, ref.name, ref.version)
    else:
        mv = registry.newest_version(config, ref.name, ref.stage)
    resolved = ResolvedModel(
        name=mv.name,
        version=int(mv.version),
        run_id=mv.run_id or None,
        source=mv.source,
        reference=str(ref),
        stage=mv.current_stage,
        aliases=tuple(getattr(mv, "aliases", []) or []),
    )
    logger.debug("model reference %s resolved to version %d (run %s)", ref, resolved.version, resolved.run_id)
    return resolved
