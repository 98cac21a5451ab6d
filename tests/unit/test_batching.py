"""Gatherers: what concurrent lanes send leaves in shared calls (PutEvents of up to ten, and others)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import pytest
from run_tagger.batching import EventBatcher, Gatherer, Lanes
from run_tagger.errors import PublishFailed
from run_tagger.publisher import Event, EventPublisher

from tests.support import run_in_lanes


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


def _batcher(bridge: RecordingEventBridge, lanes: Lanes | None = None) -> EventBatcher:
    publisher = EventPublisher(bridge, bus_name="bus", source="run-tagger", sleep=lambda _s: None)  # type: ignore[arg-type]
    return EventBatcher(publisher, lanes)


def _event(number: int, *, fail: bool = False) -> Event:
    return Event("Run Tagged", {"n": number, "fail": fail})


def _run_lanes(batcher: EventBatcher, events: list[Event]) -> list[Exception | None]:
    """One lane per event, each publishing it; all start together."""
    return run_in_lanes(batcher.lane, [partial(batcher.publish, event) for event in events])


def test_ten_concurrent_lanes_share_one_putevents_call() -> None:
    # Given ten lanes that each publish one event at the same time
    bridge = RecordingEventBridge()
    # When they publish through one batcher
    outcomes = _run_lanes(_batcher(bridge), [_event(i) for i in range(10)])
    # Then one PutEvents call carried all ten
    assert outcomes == [None] * 10
    assert [len(call) for call in bridge.calls] == [10]


def test_twenty_five_lanes_need_three_calls() -> None:
    bridge = RecordingEventBridge()

    _run_lanes(_batcher(bridge), [_event(i) for i in range(25)])

    assert sorted(len(call) for call in bridge.calls) == [5, 10, 10]


def test_a_lone_publish_goes_out_at_once() -> None:
    # Given a publish outside any lane
    bridge = RecordingEventBridge()
    # When it is made
    _batcher(bridge).publish(_event(1))
    # Then it was sent without waiting for company
    assert [len(call) for call in bridge.calls] == [1]


def test_a_refused_entry_fails_only_its_own_publisher() -> None:
    # Given ten lanes, one of whose events EventBridge refuses
    bridge = RecordingEventBridge()
    events = [_event(i, fail=(i == 3)) for i in range(10)]
    # When they publish together
    outcomes = _run_lanes(_batcher(bridge), events)
    # Then only that lane learns of the failure
    assert [i for i, outcome in enumerate(outcomes) if outcome is not None] == [3]
    assert isinstance(outcomes[3], PublishFailed)


def test_a_lane_that_ends_without_publishing_does_not_hold_the_others_back() -> None:
    # Given two lanes, one of which ends without publishing anything
    bridge = RecordingEventBridge()
    batcher = _batcher(bridge)
    inside = threading.Event()
    release = threading.Event()

    def silent_lane() -> None:
        with batcher.lane():
            inside.set()
            release.wait(timeout=5)

    thread = threading.Thread(target=silent_lane)
    thread.start()
    inside.wait(timeout=5)
    done = threading.Event()

    def publishing_lane() -> None:
        with batcher.lane():
            batcher.publish(_event(1))
        done.set()

    publisher = threading.Thread(target=publishing_lane)
    publisher.start()
    # When the silent lane ends
    assert not done.wait(timeout=0.2)  # held while another lane could still add an event
    release.set()
    # Then the waiting event goes out
    assert done.wait(timeout=5)
    thread.join(timeout=5)
    publisher.join(timeout=5)
    assert [len(call) for call in bridge.calls] == [1]


@pytest.mark.parametrize("count", [1, 9, 10, 11])
def test_every_event_is_published_exactly_once(count: int) -> None:
    bridge = RecordingEventBridge()

    _run_lanes(_batcher(bridge), [_event(i) for i in range(count)])

    sent = sorted(entry["Detail"] for call in bridge.calls for entry in call)
    assert len(sent) == count
    assert len(set(sent)) == count


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
    events = _batcher(bridge, lanes)
    completions = RecordingSend()
    gatherer = _gatherer(lanes, completions)

    def work(number: int) -> Any:
        def run() -> None:
            events.publish(_event(number))
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


def test_a_follower_sends_once_the_lanes_on_their_way_arrived_without_waiting_for_a_busy_lane() -> None:
    # Given ten lanes publishing (one event refused) then completing, and an eleventh lane busy elsewhere
    lanes = Lanes()
    bridge = RecordingEventBridge()
    events = _batcher(bridge, lanes)
    completions = RecordingSend()
    sent = threading.Event()

    def send_and_tell(items: list[str]) -> list[Exception | None]:
        sent.set()
        return completions(items)

    follower = Gatherer(lanes, send_and_tell, max_items=10, on_error=lambda exc: exc, follower=True)

    def publish_then_complete(number: int) -> None:
        events.publish(_event(number, fail=(number == 3)), then_completes=True)
        follower.submit(f"done-{number}")

    seen_by_busy_lane: list[bool] = []
    # When the ten publish together (a full PutEvents call) while the eleventh is still busy
    outcomes = run_in_lanes(
        lanes.lane,
        [
            *(partial(publish_then_complete, i) for i in range(10)),
            lambda: seen_by_busy_lane.append(sent.wait(5)),
        ],
    )
    # Then the nine published lanes' completions left together, while the busy lane was still running
    assert [i for i, outcome in enumerate(outcomes) if outcome is not None] == [3]
    assert seen_by_busy_lane == [True]
    assert [len(call) for call in completions.calls] == [9]
