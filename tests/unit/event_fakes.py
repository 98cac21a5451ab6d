"""EventBridge in memory, and the event batcher built on it, for the batching tests."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from run_tagger.batching import EventBatcher, Lanes
from run_tagger.publisher import Event, EventPublisher


@dataclass
class RecordingEventBridge:
    """PutEvents in memory; entries whose detail has `"fail": true` are refused."""

    calls: list[list[dict[str, Any]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        with self.lock:
            self.calls.append(Entries)
        results = [
            {"ErrorCode": "InternalFailure", "ErrorMessage": "no"}
            if '"fail":true' in e["Detail"]
            else {"EventId": "1"}
            for e in Entries
        ]
        return {"FailedEntryCount": sum("ErrorCode" in r for r in results), "Entries": results}


def an_event_batcher(bridge: RecordingEventBridge, lanes: Lanes | None = None) -> EventBatcher:
    publisher = EventPublisher(bridge, bus_name="bus", source="run-tagger", sleep=lambda _s: None)  # type: ignore[arg-type]
    return EventBatcher(publisher, lanes)


def an_event(number: int, *, fail: bool = False) -> Event:
    return Event("Run Tagged", {"n": number, "fail": fail})
