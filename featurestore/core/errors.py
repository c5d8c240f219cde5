"""Exceptions raised by featurelake and the exit codes the jobs map them to.

Every job exits with one of these codes, so that spark-submit, Data Factory and shell
scripts can tell the failures apart:

====  =========================  ==================================================
code  exception                  meaning
====  =========================  ==================================================
0     -                          success
1     any other exception        unexpected failure (a bug, or an unknown fault)
2     BadInputError              input, definition or configuration is invalid
3     NotFoundError              a table, model, version or batch does not exist
4     ConflictError              a concurrent writer won, or the state forbids it
5     DependencyUnavailableError storage, MLflow or Feast cannot be reached or read
6     ModelNeedsRetrainingError  monitoring: out of range and retraining failed
====  =========================  ==================================================
"""

from __future__ import annotations


class FeaturelakeError(Exception):
    """Base class of every error featurelake raises on purpose."""

    exit_code = 1


class BadInputError(FeaturelakeError, ValueError):
    """The input, a definition or the configuration is invalid."""

    exit_code = 2


class NotFoundError(FeaturelakeError, LookupError):
    """A named table, model, version, stage, alias or batch does not exist."""

    exit_code = 3


class ConflictError(FeaturelakeError):
    """The operation conflicts with the current state or with a concurrent writer."""

    exit_code = 4


class DependencyUnavailableError(FeaturelakeError):
    """Storage, the MLflow tracking server or the Feast registry cannot be used."""

    exit_code = 5


class ModelNeedsRetrainingError(FeaturelakeError):
    """Monitoring found metrics out of range and retraining did not fix them."""

    exit_code = 6


EXIT_OK = 0
EXIT_UNEXPECTED = 1


def exit_code_for(error: BaseException) -> int:
    """Return the documented process exit code for ``error``."""
    if isinstance(error, FeaturelakeError):
        return error.exit_code
    return EXIT_UNEXPECTED
