"""Small helpers shared by the integration and fault tests."""

from __future__ import annotations

from typing import Any


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
