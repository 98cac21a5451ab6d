"""Gatherers: what concurrent lanes send leaves in shared calls; gatherers sharing lanes hand lanes on."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import pytest
from run_tagger.batching import Gatherer, Lanes
from run_tagger.errors import PublishFailed

from tests.support import run_in_lanes
from tests.unit.event_fakes import RecordingEventBridge, an_event, an_event_batcher


@dataclass
class RecordingSend:
    """A gatherer's `send`: records each call's items; items named in `refuse` come back failed."""

    refuse: set[str] = field(default_factory=set)
    calls: list[list[str]] = field(default_factory=list)

    def __call__(self, items: list[str]) -> list[Exception | None]:
        self.calls.append(items)
        return [RuntimeError(item) if item in self.refuse else None for item in items]


def _gatherer(lanes: Lanes, send: Any, *, max_items: int = 10) -> Gatherer[str]:
    return Gatherer(lanes, send, max_items=max_items, on_error=lambda exc: RuntimeError(type(exc).__name__))


def test_lanes_that_leave_one_gatherer_together_reach_the_next_together() -> None:
    # Given ten lanes that each publish an event and then record a completion
    lanes = Lanes()
    bridge = RecordingEventBridge()
    events = an_event_batcher(bridge, lanes)
    completions = RecordingSend()
    gatherer = _gatherer(lanes, completions)

    def work(number: int) -> Any:
        def run() -> None:
            events.publish(an_event(number))
            gatherer.submit(f"done-{number}")

        return run

    # When they run at once
    outcomes = run_in_lanes(lanes.lane, [work(i) for i in range(10)])
    # Then one PutEvents call carried the events and one call of the second gatherer the completions
    assert outcomes == [None] * 10
    assert [len(call) for call in bridge.calls] == [10]
    assert [sorted(call) for call in completions.calls] == [sorted(f"done-{i}" for i in range(10))]


def test_a_lane_waiting_on_one_gatherer_does_not_hold_back_another() -> None:
    # Given two gatherers sharing the lanes, and one lane waiting on each
    lanes = Lanes()
    first, second = RecordingSend(), RecordingSend()
    gatherers = [_gatherer(lanes, first), _gatherer(lanes, second)]
    # When both lanes submit, each to its own gatherer
    outcomes = run_in_lanes(lanes.lane, [lambda: gatherers[0].submit("a"), lambda: gatherers[1].submit("b")])
    # Then neither waits for the other: each gatherer sends what it holds
    assert outcomes == [None, None]
    assert (first.calls, second.calls) == ([["a"]], [["b"]])


def test_a_refused_item_fails_only_its_own_submitter() -> None:
    lanes = Lanes()
    gatherer = _gatherer(lanes, RecordingSend(refuse={"item-2"}))

    outcomes = run_in_lanes(lanes.lane, [partial(gatherer.submit, f"item-{i}") for i in range(4)])

    assert [i for i, outcome in enumerate(outcomes) if outcome is not None] == [2]


@pytest.mark.parametrize("send", [lambda items: 1 / 0, lambda items: [None]], ids=["raises", "short"])
def test_a_send_that_fails_or_answers_short_fails_every_item_of_its_call(send: Any) -> None:
    # Given a send that raises, or answers for fewer items than it was given
    lanes = Lanes()
    gatherer = _gatherer(lanes, send)
    # When three lanes submit together
    outcomes = run_in_lanes(lanes.lane, [partial(gatherer.submit, f"item-{i}") for i in range(3)])
    # Then each learns that its item was not taken
    assert all(isinstance(outcome, RuntimeError) for outcome in outcomes)


def test_a_full_call_leaves_without_waiting_for_the_other_lanes() -> None:
    # Given three lanes, one of which is busy elsewhere, and a gatherer that sends two at a time
    lanes = Lanes()
    send = RecordingSend()
    sent = threading.Event()

    def send_and_tell(items: list[str]) -> list[Exception | None]:
        sent.set()
        return send(items)

    gatherer = _gatherer(lanes, send_and_tell, max_items=2)
    seen_by_busy_lane: list[bool] = []
    # When the other two submit
    outcomes = run_in_lanes(
        lanes.lane,
        [
            lambda: gatherer.submit("a"),
            lambda: gatherer.submit("b"),
            lambda: seen_by_busy_lane.append(sent.wait(timeout=5)),
        ],
    )
    # Then their call went out while the busy lane was still running
    assert outcomes == [None, None, None]
    assert seen_by_busy_lane == [True]
    assert [sorted(call) for call in send.calls] == [["a", "b"]]


class EventsThenCompletions:
    """An event batcher and a follower gatherer of completions sharing one `Lanes`, as in the function."""

    def __init__(self) -> None:
        self.lanes = Lanes()
        self.bridge = RecordingEventBridge()
        self.events = an_event_batcher(self.bridge, self.lanes)
        self.completions = RecordingSend()
        self.sent = threading.Event()  # set when the follower sends
        self.follower = Gatherer(
            self.lanes, self._send, max_items=10, on_error=lambda exc: exc, follower=True
        )

    def _send(self, items: list[str]) -> list[Exception | None]:
        self.sent.set()
        return self.completions(items)

    def publish_then_complete(self, number: int) -> None:
        self.events.publish(an_event(number, fail=(number == 3)), then_completes=True)
        self.follower.submit(f"done-{number}")

    def busy_until_sent(self, seen: list[bool]) -> None:
        seen.append(self.sent.wait(5))

    def sizes(self) -> list[int]:
        return [len(call) for call in self.completions.calls]


def test_a_follower_sends_once_the_lanes_on_their_way_arrived_without_waiting_for_a_busy_lane() -> None:
    # Given ten lanes publishing (one event refused) then completing, and an eleventh lane busy elsewhere
    flow = EventsThenCompletions()
    seen_by_busy_lane: list[bool] = []
    # When the ten publish together (a full PutEvents call) while the eleventh is still busy
    outcomes = run_in_lanes(
        flow.lanes.lane,
        [
            *(partial(flow.publish_then_complete, i) for i in range(10)),
            partial(flow.busy_until_sent, seen_by_busy_lane),
        ],
    )
    # Then the nine published lanes' completions left together, while the busy lane was still running
    assert [i for i, outcome in enumerate(outcomes) if outcome is not None] == [3]
    assert seen_by_busy_lane == [True]
    assert flow.sizes() == [9]


def test_a_follower_does_not_wait_for_lanes_not_headed_its_way() -> None:
    # Given ten lanes publishing together: one event refused, one published with no completion to follow,
    # one published by a lane that then ends without completing, and the rest completing
    flow = EventsThenCompletions()
    seen_by_busy_lanes: list[bool] = []

    def refused_then_busy() -> None:
        with contextlib.suppress(PublishFailed):
            flow.events.publish(an_event(3, fail=True), then_completes=True)
        flow.busy_until_sent(seen_by_busy_lanes)

    def no_completion_then_busy() -> None:
        flow.events.publish(an_event(5))
        flow.busy_until_sent(seen_by_busy_lanes)

    def ends_without_completing() -> None:
        flow.events.publish(an_event(7), then_completes=True)

    work: list[Callable[[], object]] = [partial(flow.publish_then_complete, i) for i in range(10)]
    work[3], work[5], work[7] = refused_then_busy, no_completion_then_busy, ends_without_completing
    # When they run
    outcomes = run_in_lanes(flow.lanes.lane, work)
    # Then the seven completions left together while the two busy lanes were still running
    assert outcomes == [None] * 10
    assert seen_by_busy_lanes == [True, True]
    assert flow.sizes() == [7]


def test_a_follower_waits_for_the_lane_that_sent_the_events_call_too() -> None:
    # Given ten lanes publishing then completing, where the lane that sends the PutEvents call is the
    # last to reach the follower
    flow = EventsThenCompletions()
    put_events_sent_by: list[int] = []
    put_events = flow.bridge.put_events

    def recording_sender(Entries: list[dict[str, Any]]) -> dict[str, Any]:
        put_events_sent_by.append(threading.get_ident())
        return put_events(Entries=Entries)

    flow.bridge.put_events = recording_sender  # type: ignore[method-assign]

    def publish_then_complete(number: int) -> None:
        flow.events.publish(an_event(number), then_completes=True)
        if threading.get_ident() in put_events_sent_by:
            flow.sent.wait(0.2)  # the others reach the follower first; it must not leave without this one
        flow.follower.submit(f"done-{number}")

    # When they run
    outcomes = run_in_lanes(flow.lanes.lane, [partial(publish_then_complete, i) for i in range(10)])
    # Then all ten completions left in one call
    assert outcomes == [None] * 10
    assert flow.sizes() == [10]
