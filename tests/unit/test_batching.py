"""EventBatcher: the events of concurrent lanes share PutEvents calls of up to ten."""

from __future__ import annotations

import threading
from functools import partial

import pytest
from run_tagger.batching import Lanes
from run_tagger.errors import PublishFailed
from run_tagger.publisher import Event

from tests.support import run_in_lanes
from tests.unit.event_fakes import RecordingEventBridge, an_event, an_event_batcher


def _run_lanes(bridge: RecordingEventBridge, events: list[Event]) -> list[Exception | None]:
    """One lane per event, each publishing it through one batcher; all start together."""
    lanes = Lanes()
    batcher = an_event_batcher(bridge, lanes)
    return run_in_lanes(lanes.lane, [partial(batcher.publish, event) for event in events])


def test_ten_concurrent_lanes_share_one_putevents_call() -> None:
    # Given ten lanes that each publish one event at the same time
    bridge = RecordingEventBridge()
    # When they publish through one batcher
    outcomes = _run_lanes(bridge, [an_event(i) for i in range(10)])
    # Then one PutEvents call carried all ten
    assert outcomes == [None] * 10
    assert [len(call) for call in bridge.calls] == [10]


def test_twenty_five_lanes_need_three_calls() -> None:
    bridge = RecordingEventBridge()

    _run_lanes(bridge, [an_event(i) for i in range(25)])

    assert sorted(len(call) for call in bridge.calls) == [5, 10, 10]


def test_a_lone_publish_goes_out_at_once() -> None:
    # Given a publish outside any lane
    bridge = RecordingEventBridge()
    # When it is made
    an_event_batcher(bridge).publish(an_event(1))
    # Then it was sent without waiting for company
    assert [len(call) for call in bridge.calls] == [1]


def test_a_refused_entry_fails_only_its_own_publisher() -> None:
    # Given ten lanes, one of whose events EventBridge refuses
    bridge = RecordingEventBridge()
    events = [an_event(i, fail=(i == 3)) for i in range(10)]
    # When they publish together
    outcomes = _run_lanes(bridge, events)
    # Then only that lane learns of the failure
    assert [i for i, outcome in enumerate(outcomes) if outcome is not None] == [3]
    assert isinstance(outcomes[3], PublishFailed)


def test_a_lane_that_ends_without_publishing_does_not_hold_the_others_back() -> None:
    # Given two lanes, one of which ends without publishing anything
    bridge = RecordingEventBridge()
    lanes = Lanes()
    batcher = an_event_batcher(bridge, lanes)
    inside = threading.Event()
    release = threading.Event()

    def silent_lane() -> None:
        with lanes.lane():
            inside.set()
            release.wait(timeout=5)

    thread = threading.Thread(target=silent_lane)
    thread.start()
    inside.wait(timeout=5)
    done = threading.Event()

    def publishing_lane() -> None:
        with lanes.lane():
            batcher.publish(an_event(1))
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

    _run_lanes(bridge, [an_event(i) for i in range(count)])

    sent = sorted(entry["Detail"] for call in bridge.calls for entry in call)
    assert len(sent) == count
    assert len(set(sent)) == count
