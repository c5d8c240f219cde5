"""The stages of a registered model version, defined once for the registry, model references,
promotion and the command line."""

from __future__ import annotations

from featurestore.core.errors import BadInputError

STAGES = ("None", "Staging", "Production", "Archived")
# Where promote moves a version; a version in one of them is served and cannot be deleted.
PROTECTED_STAGES = ("Staging", "Production")


def check_stage(stage: str) -> str:
    """Return the canonical name of ``stage`` (case-insensitive), refusing unknown ones.

    >>> check_stage("production")
    'Production'
    """
    for known in STAGES:
        if stage.lower() == known.lower():
            return known
    raise BadInputError(f"unknown stage {stage!r}: use one of {', '.join(STAGES)}")
