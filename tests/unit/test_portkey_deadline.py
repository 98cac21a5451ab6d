"""The Portkey client never works past the caller's deadline: not while waiting for a slot among
MAX_CONCURRENCY, not while a body trickles in."""

from __future__ import annotations

import threading

import pytest
import requests
import responses
from run_tagger.errors import DeadlineExceeded, PortkeyUnavailable
from run_tagger.portkey import PortkeyClient

from tests.support import a_run

URL = "https://gateway.test/v1/threads/thread_abc123/runs/run_abc123"
HEADERS = {"x-portkey-api-key": "pk-test", "x-portkey-virtual-key": "vk-test"}
METADATA = {"team": "search"}


class SteppingClock:
    """Moves forward by `step` seconds every time it is read."""

    def __init__(self, step: float) -> None:
        self.now = 0.0
        self.step = step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


def _client(
    clock: SteppingClock, *, max_in_flight: int | None = None, max_attempts: int = 1
) -> PortkeyClient:
    return PortkeyClient(
        requests.Session(),
        base_url="https://gateway.test/v1",
        timeout_seconds=10,
        max_attempts=1,
        max_in_flight=max_in_flight,
        clock=clock,
        sleep=lambda _s: None,
        jitter=lambda _low, high: high,
    )


def test_waiting_for_a_slot_stops_at_the_deadline(portkey: responses.RequestsMock) -> None:
    # Given a client allowed one request at a time, whose one slot another request holds
    client = _client(SteppingClock(0.0), max_in_flight=1)
    assert client._in_flight is not None
    client._in_flight.acquire()
    # When a request with 0.6 s before its deadline asks for a slot
    waited = threading.Event()

    def call() -> None:
        with pytest.raises(DeadlineExceeded, match="no Portkey slot"):
            client.modify_run(
                "thread_abc123", "run_abc123", {"team": "search"}, headers=HEADERS, deadline=0.6
            )
        waited.set()

    worker = threading.Thread(target=call)
    worker.start()
    # Then it gives up after about 0.1 s (the deadline less the time an attempt needs), not forever
    assert waited.wait(timeout=5)
    worker.join(timeout=5)
    assert len(portkey.calls) == 0


def test_a_body_arriving_past_the_attempts_time_is_a_timeout(portkey: responses.RequestsMock) -> None:
    # Given a body in several pieces, and a clock that runs 4 s per reading: the pieces arrive past the
    # attempt's 10 s budget
    portkey.add(responses.POST, URL, json=a_run(metadata=METADATA, instructions="x" * 400_000))
    client = _client(SteppingClock(4.0))
    # When the run is modified with plenty of deadline left
    with pytest.raises(PortkeyUnavailable, match="did not answer within"):
        client.modify_run("thread_abc123", "run_abc123", METADATA, headers=HEADERS, deadline=1e9)
