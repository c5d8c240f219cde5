"""Concurrent requests scored in groups: each gets its own result or error, a lone one is not kept waiting."""

from __future__ import annotations

import threading
import time

import pytest

from inference.request_groups import RequestGroups


class Scorer:
    """Doubles each payload; refuses negative ones; takes 50 ms per group, so requests pile up meanwhile."""

    def __init__(self) -> None:
        self.groups: list[list[int]] = []

    def __call__(self, group) -> None:
        self.groups.append([p.payload for p in group])
        time.sleep(0.05)
        for pending in group:
            if pending.payload < 0:
                pending.error = ValueError(f"negative {pending.payload}")
            else:
                pending.result = pending.payload * 2


def test_a_lone_request_is_scored_at_once_in_a_group_of_its_own():
    scorer = Scorer()
    groups = RequestGroups(scorer)
    started = time.monotonic()
    assert groups.submit(21) == 42
    assert time.monotonic() - started < 1.0
    assert scorer.groups == [[21]]


def test_concurrent_requests_share_groups_and_each_gets_its_own_answer():
    scorer = Scorer()
    groups = RequestGroups(scorer)
    payloads = [i if i % 7 else -i for i in range(1, 41)]
    answers: dict[int, object] = {}

    def send(payload: int) -> None:
        try:
            answers[payload] = groups.submit(payload)
        except ValueError as exc:
            answers[payload] = str(exc)

    threads = [threading.Thread(target=send, args=(p,)) for p in payloads]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert answers == {p: (p * 2 if p >= 0 else f"negative {p}") for p in payloads}
    assert sorted(p for group in scorer.groups for p in group) == sorted(payloads)  # each scored exactly once
    assert max(len(group) for group in scorer.groups) > 1 and len(scorer.groups) < len(payloads)


def test_a_failing_group_hands_its_error_to_each_request_and_the_next_group_still_runs():
    calls = []

    def broken_then_fine(group) -> None:
        calls.append(len(group))
        if len(calls) == 1:
            raise RuntimeError("scorer broke")
        for pending in group:
            pending.result = "ok"

    groups = RequestGroups(broken_then_fine)
    with pytest.raises(RuntimeError, match="scorer broke"):
        groups.submit(1)
    assert groups.submit(2) == "ok"
