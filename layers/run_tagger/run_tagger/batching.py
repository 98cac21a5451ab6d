"""Events of concurrent requests leave together: PutEvents calls of up to 10 as results arrive.

Each lane of a batch publishes through the `EventBatcher` and waits for its own event's fate. The
pending events go out as soon as ten are waiting, or as soon as every lane still running is waiting
(no one else can add an event soon), so a batch of ten costs one PutEvents call and a lone request
is never held back.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass

from run_tagger.errors import PublishFailed
from run_tagger.publisher import MAX_ENTRIES_PER_CALL, Event, EventPublisher


@dataclass
class _Slot:
    event: Event
    done: bool = False
    failure: PublishFailed | None = None


class EventBatcher:
    """Gathers the events of the lanes running now into shared PutEvents calls."""

    def __init__(self, publisher: EventPublisher) -> None:
        self._publisher = publisher
        self._ready = threading.Condition()
        self._pending: list[_Slot] = []
        self._active = 0  # lanes running now
        self._waiting = 0  # of them, those waiting for their event to be published

    @contextlib.contextmanager
    def lane(self) -> Iterator[None]:
        """Counts a lane as running while inside; its events may then be held for others'."""
        with self._ready:
            self._active += 1
        try:
            yield
        finally:
            with self._ready:
                self._active -= 1
                self._ready.notify_all()

    def publish(self, event: Event) -> None:
        """Publish `event` with whatever else is ready; raises `PublishFailed` if it was not taken."""
        slot = _Slot(event)
        with self._ready:
            self._pending.append(slot)
            self._waiting += 1
            try:
                while not slot.done:
                    if self._should_flush():
                        self._flush()
                    else:
                        self._ready.wait()
            finally:
                self._waiting -= 1
        if slot.failure is not None:
            raise slot.failure

    def _should_flush(self) -> bool:
        # Outside any lane (a direct call), or when nobody else is still working: send now.
        return bool(self._pending) and (
            len(self._pending) >= MAX_ENTRIES_PER_CALL or self._waiting >= max(self._active, 1)
        )

    def _flush(self) -> None:
        """Send up to ten pending events; called with the lock held, released during the call."""
        batch, self._pending = self._pending[:MAX_ENTRIES_PER_CALL], self._pending[MAX_ENTRIES_PER_CALL:]
        self._ready.release()
        try:
            outcomes = self._publisher.publish([slot.event for slot in batch])
        except Exception as exc:  # every waiter must learn its fate, whatever happened
            outcomes = [PublishFailed(f"PutEvents failed: {type(exc).__name__}")] * len(batch)
        finally:
            self._ready.acquire()
        for slot, failure in zip(batch, outcomes, strict=True):
            slot.done, slot.failure = True, failure
        self._ready.notify_all()
