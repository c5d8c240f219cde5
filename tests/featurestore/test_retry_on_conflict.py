"""retry_on_conflict: which failures are retried, and what is raised when retrying cannot help."""

from __future__ import annotations

import pytest
from delta.exceptions import DeltaConcurrentModificationException, MetadataChangedException, ProtocolChangedException

from featurestore.delta_tables import retry_on_conflict
from featurestore.core.errors import BadInputError, ConflictError, DependencyUnavailableError


def failing(errors: list[BaseException], result: str = "done"):
    """A write that raises ``errors`` one per call, then returns ``result``; ``calls`` counts calls."""
    calls: list[int] = []

    def write() -> str:
        calls.append(1)
        if len(calls) <= len(errors):
            raise errors[len(calls) - 1]
        return result

    return write, calls


def conflict() -> DeltaConcurrentModificationException:
    return DeltaConcurrentModificationException("[DELTA_CONCURRENT_APPEND] files were added by a concurrent update")


def test_a_conflict_is_retried_and_the_write_result_returned():
    write, calls = failing([conflict()])
    assert retry_on_conflict(write, "table 'x'", "/w/x", max_attempts=2) == "done"
    assert len(calls) == 2


def test_a_lost_race_to_create_the_table_is_retried():
    """Two writers creating one table at once: Delta 4 raises these, which do not derive from
    DeltaConcurrentModificationException."""
    write, calls = failing([ProtocolChangedException("[DELTA_PROTOCOL_CHANGED] ProtocolChangedException: The "
                                                     "protocol version of the Delta table has been changed"),
                            MetadataChangedException("[DELTA_METADATA_CHANGED] MetadataChangedException: The "
                                                     "metadata of the Delta table has been changed")])
    assert retry_on_conflict(write, "table 'x'", "/w/x", max_attempts=3) == "done"
    assert len(calls) == 3


def test_a_conflict_on_the_last_attempt_is_a_conflict_error_naming_the_table():
    write, calls = failing([conflict(), conflict()])
    with pytest.raises(ConflictError, match="table 'x': concurrent writers kept conflicting after 2 attempts: "
                                            r"\[DELTA_CONCURRENT_APPEND\]"):
        retry_on_conflict(write, "table 'x'", "/w/x", max_attempts=2)
    assert len(calls) == 2


def test_failing_storage_is_a_dependency_error_and_not_retried():
    write, calls = failing([RuntimeError("java.io.IOException: Mkdirs failed to create /w/x")])
    with pytest.raises(DependencyUnavailableError, match="table 'x': storage at /w/x cannot be written"):
        retry_on_conflict(write, "table 'x'", "/w/x")
    assert len(calls) == 1


def test_other_errors_pass_through_unchanged_and_are_not_retried():
    own = BadInputError("column 'java.io.x' is bad")  # featurelake's own errors are never re-mapped
    write, calls = failing([own])
    with pytest.raises(BadInputError) as raised:
        retry_on_conflict(write, "table 'x'", "/w/x")
    assert raised.value is own and len(calls) == 1
    write, calls = failing([KeyError("k")])
    with pytest.raises(KeyError):
        retry_on_conflict(write, "table 'x'", "/w/x")
    assert len(calls) == 1
