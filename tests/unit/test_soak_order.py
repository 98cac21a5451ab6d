"""The soak's order check: no run's Modify run calls or applied changes go back to an earlier request."""

from __future__ import annotations

from local.soak_report import RunChange, runs_out_of_order

THREAD = "thread_soak"
SENT_AT = {"10": 0, "11": 1, "12": 2}  # metadata n: place in the order sent


def change(n: str, run_id: str = "run_a", thread_id: str = THREAD) -> RunChange:
    return (thread_id, run_id, {"n": n})


def late(calls: list[RunChange], applied: list[RunChange]) -> int:
    return runs_out_of_order(THREAD, SENT_AT, calls, applied)


def test_calls_and_changes_in_the_order_sent_with_retries_are_in_order() -> None:
    # Given a retried first request, then the next ones, called and applied in the order sent
    calls = [change("10"), change("10"), change("11"), change("12")]
    # Then no run is out of order
    assert late(calls, applied=[change("10"), change("11"), change("12")]) == 0


def test_a_request_called_after_a_later_one_is_out_of_order_even_if_never_applied() -> None:
    # Given the second request called before the first, which then fails and is never applied
    calls = [change("11"), change("10")]
    # Then its run is out of order
    assert late(calls, applied=[change("11")]) == 1


def test_a_change_applied_after_a_later_one_is_out_of_order_though_called_in_order() -> None:
    # Given calls in order whose changes were applied the other way round
    calls = [change("10"), change("11")]
    # Then its run is out of order, once
    assert late(calls, applied=[change("11"), change("10")]) == 1


def test_runs_are_judged_apart() -> None:
    # Given the second request of run_a, then the first request of run_b
    calls = [change("11", "run_a"), change("10", "run_b")]
    # Then neither run is out of order
    assert late(calls, applied=calls) == 0


def test_other_threads_and_unknown_requests_are_not_judged() -> None:
    # Given calls on another thread and a body without a known n, around the soak's own in order
    calls = [change("12", thread_id="thread_other"), change("10"), change("99"), change("11")]
    unknown: RunChange = (THREAD, "run_a", {})
    # Then nothing is out of order
    assert late([*calls, unknown], applied=[]) == 0
