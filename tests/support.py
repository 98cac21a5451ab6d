"""Small helpers shared by the tests."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import Any


def run_in_lanes(
    lane: Callable[[], AbstractContextManager[object]], work: Sequence[Callable[[], object]]
) -> list[Exception | None]:
    """Each callable on a thread of its own inside `lane()`, all started together; what each raised."""
    start = threading.Barrier(len(work))
    outcomes: list[Exception | None] = [None] * len(work)

    def run(index: int) -> None:
        with lane():
            start.wait(timeout=5)
            try:
                work[index]()
            except Exception as exc:  # the outcome under test
                outcomes[index] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(work))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert not any(thread.is_alive() for thread in threads), "a lane is still waiting"
    return outcomes


def a_request(**overrides: Any) -> dict[str, Any]:
    """A valid tag-run request, with any field replaced."""
    request: dict[str, Any] = {"thread_id": "thread_it1", "run_id": "run_it1", "metadata": {"team": "search"}}
    request.update(overrides)
    return request


def one_event(events: list[dict[str, Any]], detail_type: str) -> dict[str, Any]:
    """The single event of `detail_type` among `events`."""
    matching = [event for event in events if event["detail-type"] == detail_type]
    assert len(matching) == 1, f"expected one {detail_type!r} event, got {len(matching)}: {events}"
    return matching[0]


def attribute(message: dict[str, Any], name: str) -> str:
    """A string message attribute of an SQS message as ReceiveMessage returns it."""
    return str(message["MessageAttributes"][name]["StringValue"])


def a_run(**changes: Any) -> dict[str, Any]:
    """A run object with all 25 required fields of DESIGN §1.2 (run_abc123 of thread_abc123), any replaced."""
    run: dict[str, Any] = {
        "id": "run_abc123",
        "object": "thread.run",
        "created_at": 1_767_225_600,
        "thread_id": "thread_abc123",
        "assistant_id": "asst_abc123",
        "status": "completed",
        "required_action": None,
        "last_error": None,
        "expires_at": None,
        "started_at": 1_767_225_601,
        "cancelled_at": None,
        "failed_at": None,
        "completed_at": 1_767_225_609,
        "model": "gpt-4o",
        "instructions": None,
        "tools": [{"type": "code_interpreter"}],
        "metadata": {"team": "search"},
        "usage": {"prompt_tokens": 12, "completion_tokens": 30, "total_tokens": 42},
        "incomplete_details": None,
        "max_prompt_tokens": None,
        "max_completion_tokens": None,
        "truncation_strategy": {"type": "auto", "last_messages": None},
        "tool_choice": "auto",
        "parallel_tool_calls": True,
        "response_format": "auto",
    }
    run.update(changes)
    return run
