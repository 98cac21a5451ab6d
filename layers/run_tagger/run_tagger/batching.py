"""What concurrent requests send to AWS leaves together, in shared calls, as results arrive.

Each lane of a batch hands its item (an event to publish, a completed de-duplication record to write)
to a `Gatherer` and waits for that item's fate. A gatherer sends what it holds as soon as it holds a
full call's worth, or as soon as every lane still running is waiting on a gatherer (no one can add an
item soon), so ten concurrent requests cost one call and a lone request is never held back.

Gatherers share one `Lanes`: a lane waiting on either counts as waiting, so a gatherer never holds its
items for a lane that is itself waiting on the other. A lane stops counting as waiting the moment its
item is sent, before its thread wakes, so lanes that leave one gatherer together reach the next
together. A gatherer that only ever follows another (the completions follow the events) holds its
items only for the lanes on their way to it, not for lanes still busy elsewhere (with Portkey).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from run_tagger.errors import PublishFailed
from run_tagger.publisher import MAX_ENTRIES_PER_CALL, Event, EventPublisher


class Lanes:
    """The lanes of a batch running now, how many of them are waiting on a gatherer, and which are on
    their way from one gatherer to the next."""

    def __init__(self) -> None:
        self.ready = threading.Condition()
        self._active = 0
        self._waiting = 0
        self._on_their_way: set[int] = set()  # threads whose item was sent and that will submit again

    @contextlib.contextmanager
    def lane(self) -> Iterator[None]:
        """Counts a lane as running while inside; its items may then be held for others'."""
        with self.ready:
            self._active += 1
        try:
            yield
        finally:
            with self.ready:
                self._active -= 1
                self._on_their_way.discard(threading.get_ident())
                self.ready.notify_all()

    # The methods below are called with `ready` held.
    def all_waiting(self) -> bool:
        """Outside any lane (a direct call), or when no running lane can add an item: send now."""
        return self._waiting >= max(self._active, 1)

    def add_waiting(self, count: int) -> None:
        self._waiting += count

    def none_on_their_way(self) -> bool:
        return not self._on_their_way

    def on_their_way(self, threads: Iterable[int]) -> None:
        self._on_their_way.update(threads)

    def arrived(self) -> None:
        """This thread submits again: no longer on its way (a follower may now have no one to wait for)."""
        if threading.get_ident() in self._on_their_way:
            self._on_their_way.discard(threading.get_ident())
            self.ready.notify_all()


@dataclass(eq=False)
class _Slot[Item]:
    item: Item
    then_submits: bool  # once sent, its lane submits to the next gatherer
    owner: int = field(default_factory=threading.get_ident)
    done: bool = False
    failure: Exception | None = None


class Gatherer[Item]:
    """Gathers the items of the lanes running now into shared calls of `send`.

    `send(items)` returns one outcome per item, None when it was taken; if it raises, every item of
    the call fails with `on_error(exception)`. A `follower` gatherer is only reached from another one
    (`submit(..., then_submits=True)` there): it sends as soon as no lane is on its way to it.
    """

    def __init__(
        self,
        lanes: Lanes,
        send: Callable[[list[Item]], Sequence[Exception | None]],
        *,
        max_items: int,
        on_error: Callable[[Exception], Exception],
        follower: bool = False,
    ) -> None:
        self._lanes = lanes
        self._send = send
        self._max_items = max_items
        self._on_error = on_error
        self._follower = follower
        self._pending: list[_Slot[Item]] = []

    def submit(self, item: Item, *, then_submits: bool = False) -> None:
        """Send `item` with whatever else is ready; raises its failure if it was not taken.

        `then_submits`: once this item is taken, this lane submits to a follower gatherer."""
        slot = _Slot(item, then_submits)
        ready = self._lanes.ready
        with ready:
            self._lanes.arrived()
            self._pending.append(slot)
            self._lanes.add_waiting(1)
            try:
                while not slot.done:
                    if self._should_flush():
                        self._flush()
                    else:
                        ready.wait()
            finally:
                if not slot.done and slot in self._pending:  # interrupted before it was sent
                    self._pending.remove(slot)
                    self._lanes.add_waiting(-1)
        if slot.failure is not None:
            raise slot.failure

    def _should_flush(self) -> bool:
        lanes = self._lanes
        return bool(self._pending) and (
            len(self._pending) >= self._max_items
            or lanes.all_waiting()
            or (self._follower and lanes.none_on_their_way())
        )

    def _flush(self) -> None:
        """Send up to `max_items` pending items; called with the lock held, released during the call."""
        ready = self._lanes.ready
        batch, self._pending = self._pending[: self._max_items], self._pending[self._max_items :]
        ready.release()
        try:
            outcomes = list(self._send([slot.item for slot in batch]))
            if len(outcomes) != len(batch):
                raise ValueError(f"{len(outcomes)} outcomes for {len(batch)} items")
        except Exception as exc:  # every waiter must learn its fate, whatever happened
            outcomes = [self._on_error(exc)] * len(batch)
        finally:
            ready.acquire()
        for slot, failure in zip(batch, outcomes, strict=True):
            slot.done, slot.failure = True, failure
        self._lanes.add_waiting(-len(batch))
        self._lanes.on_their_way(slot.owner for slot in batch if slot.then_submits and slot.failure is None)
        ready.notify_all()


class EventBatcher:
    """Events of concurrent requests in shared PutEvents calls of up to ten."""

    def __init__(self, publisher: EventPublisher, lanes: Lanes | None = None) -> None:
        self._gatherer: Gatherer[Event] = Gatherer(
            lanes or Lanes(),
            publisher.publish,
            max_items=MAX_ENTRIES_PER_CALL,
            on_error=lambda exc: PublishFailed(f"PutEvents failed: {type(exc).__name__}"),
        )

    def publish(self, event: Event, *, then_completes: bool = False) -> None:
        """Publish `event` with whatever else is ready; raises `PublishFailed` if it was not taken.

        `then_completes`: once published, the lane records its completion (the completions gatherer)."""
        self._gatherer.submit(event, then_submits=then_completes)
