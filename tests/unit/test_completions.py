"""BatchedCompletions: the successes of concurrent requests recorded in shared BatchWriteItem calls."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import pytest
from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig
from botocore.exceptions import ClientError
from run_tagger.batching import Gatherer, Lanes
from run_tagger.completions import ATTEMPTS, BatchedCompletions, CompletionNotSaved

from tests.support import run_in_lanes

TABLE = "idempotency"


@dataclass
class RecordingDynamoDB:
    """BatchWriteItem in memory. Items whose key is in `leave` come back unprocessed `leave[key]` times;
    with `refuse` set, every call after the first `refuse_after` raises it."""

    leave: dict[str, int] = field(default_factory=dict)
    refuse: str | None = None
    refuse_after: int = 0
    calls: list[list[dict[str, Any]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def batch_write_item(self, RequestItems: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
        items = [request["PutRequest"]["Item"] for request in RequestItems[TABLE]]
        with self.lock:
            self.calls.append(items)
        if self.refuse and len(self.calls) > self.refuse_after:
            raise ClientError({"Error": {"Code": self.refuse, "Message": "no"}}, "BatchWriteItem")
        unprocessed = []
        for item in items:
            key = item["id"]["S"]
            if self.leave.get(key, 0) > 0:
                self.leave[key] -= 1
                unprocessed.append({"PutRequest": {"Item": item}})
        return {"UnprocessedItems": {TABLE: unprocessed} if unprocessed else {}}

    def keys(self, call: int) -> list[str]:
        return sorted(item["id"]["S"] for item in self.calls[call])


def _store(client: RecordingDynamoDB, lanes: Lanes, sleeps: list[float]) -> BatchedCompletions:
    store = BatchedCompletions(TABLE, client, lanes, sleep=sleeps.append)  # type: ignore[arg-type]
    store.configure(IdempotencyConfig(event_key_jmespath="key"), function_name="tag")
    return store


def _hashed(store: BatchedCompletions, key: str) -> str:
    return str(store._get_hashed_idempotency_key({"key": key}))


def _complete_together(
    store: BatchedCompletions, lanes: Lanes, keys: list[str]
) -> dict[str, Exception | None]:
    """One lane per key: each publishes its event (through a gatherer, as the event batcher does), then
    records its success, all at once."""
    events: Gatherer[str] = Gatherer(
        lanes, lambda items: [None] * len(items), max_items=10, on_error=lambda exc: exc
    )

    def publish_then_complete(key: str) -> None:
        events.submit(f"event-{key}", then_submits=True)
        store.save_success({"key": key}, {"latency_ms": 1.5})

    outcomes = run_in_lanes(lanes.lane, [partial(publish_then_complete, key) for key in keys])
    return dict(zip(keys, outcomes, strict=True))


def test_a_success_is_written_whole_as_powertools_reads_a_completed_record() -> None:
    # Given the store outside any batch
    client, sleeps = RecordingDynamoDB(), list[float]()
    store = _store(client, Lanes(), sleeps)
    # When a request's success is recorded
    store.save_success({"key": "tenant:req-1"}, {"latency_ms": 1.5})
    # Then one put carries its key, COMPLETED, an expiry and the result, and Powertools reads it back so
    [[item]] = client.calls
    assert item["id"] == {"S": _hashed(store, "tenant:req-1")}
    assert item["status"] == {"S": "COMPLETED"}
    assert int(item["expiration"]["N"]) > 0
    assert json.loads(item["data"]["S"]) == {"latency_ms": 1.5}
    record = store._item_to_data_record(item)
    assert (record.status, record.response_json_as_dict()) == ("COMPLETED", {"latency_ms": 1.5})


def test_concurrent_successes_share_one_call() -> None:
    client, sleeps = RecordingDynamoDB(), list[float]()
    lanes = Lanes()
    store = _store(client, lanes, sleeps)

    outcomes = _complete_together(store, lanes, [f"k{i}" for i in range(10)])

    assert set(outcomes.values()) == {None}
    assert [len(call) for call in client.calls] == [10]


def test_a_success_is_written_without_waiting_for_a_lane_still_busy_with_portkey() -> None:
    # Given three lanes: two publish in one full PutEvents call (two at a time here), and the first of them
    # then records its success (the other's event was a failure's); the third is still waiting for Portkey
    lanes = Lanes()
    client, sleeps = RecordingDynamoDB(), list[float]()
    store = _store(client, lanes, sleeps)
    events: Gatherer[str] = Gatherer(
        lanes, lambda items: [None] * len(items), max_items=2, on_error=lambda exc: exc
    )
    written = threading.Event()

    def publish_then_complete() -> None:
        events.submit("event-k1", then_submits=True)
        store.save_success({"key": "k1"}, {"latency_ms": 1.5})
        written.set()

    seen_by_busy_lane: list[bool] = []
    # When they run
    outcomes = run_in_lanes(
        lanes.lane,
        [
            publish_then_complete,
            lambda: events.submit("event-k2"),
            lambda: seen_by_busy_lane.append(written.wait(timeout=5)),
        ],
    )
    # Then the success was written while the busy lane was still running
    assert outcomes == [None, None, None]
    assert seen_by_busy_lane == [True]
    assert [len(call) for call in client.calls] == [1]


def test_what_dynamodb_leaves_unprocessed_is_sent_again_alone_after_a_pause() -> None:
    # Given three successes, one of which DynamoDB leaves unprocessed twice
    lanes = Lanes()
    client, sleeps = RecordingDynamoDB(), list[float]()
    store = _store(client, lanes, sleeps)
    client.leave[_hashed(store, "k1")] = 2
    # When they are recorded together
    outcomes = _complete_together(store, lanes, ["k0", "k1", "k2"])
    # Then all three are saved: the first call had all of them, the next two only the one left over
    assert set(outcomes.values()) == {None}
    assert [len(call) for call in client.calls] == [3, 1, 1]
    assert client.keys(1) == client.keys(2) == [_hashed(store, "k1")]
    assert len(sleeps) == 2


def test_a_record_dynamodb_keeps_leaving_fails_alone() -> None:
    lanes = Lanes()
    client, sleeps = RecordingDynamoDB(), list[float]()
    store = _store(client, lanes, sleeps)
    client.leave[_hashed(store, "k1")] = ATTEMPTS

    outcomes = _complete_together(store, lanes, ["k0", "k1"])

    assert outcomes["k0"] is None
    assert isinstance(outcomes["k1"], CompletionNotSaved)
    assert len(client.calls) == ATTEMPTS


@pytest.mark.parametrize("code", ["ProvisionedThroughputExceededException", "ResourceNotFoundException"])
def test_a_refused_call_fails_each_of_its_records_naming_only_the_error(code: str) -> None:
    client, sleeps = RecordingDynamoDB(refuse=code), list[float]()
    lanes = Lanes()
    store = _store(client, lanes, sleeps)

    outcomes = _complete_together(store, lanes, ["k0", "k1"])

    assert [str(outcome) for outcome in outcomes.values()] == ["BatchWriteItem failed: ClientError"] * 2


def test_a_resend_that_fails_fails_only_what_was_still_unsaved() -> None:
    # Given three successes, one left unprocessed by a first call, and DynamoDB failing the resend
    lanes = Lanes()
    client, sleeps = RecordingDynamoDB(refuse="InternalServerError", refuse_after=1), list[float]()
    store = _store(client, lanes, sleeps)
    client.leave[_hashed(store, "k1")] = 1
    # When they are recorded together
    outcomes = _complete_together(store, lanes, ["k0", "k1", "k2"])
    # Then the two the first call wrote are saved, and only the one left over failed
    assert [len(call) for call in client.calls] == [3, 1]
    assert (outcomes["k0"], outcomes["k2"]) == (None, None)
    assert str(outcomes["k1"]) == "BatchWriteItem failed: ClientError"
