"""Unit tests of `run_tagger.processor.ConcurrentBatchProcessor` under Powertools' `process_partial_response`.

The record handler is a fake; threads meet at barriers instead of sleeping, so a test that should pass
never waits, and one that finds records serialised where they should overlap fails on the barrier's timeout.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aws_lambda_powertools.utilities.batch import process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from run_tagger.processor import ConcurrentBatchProcessor

QUEUE_ARN = "arn:aws:sqs:eu-west-1:123456789012:tag-run"
BARRIER_TIMEOUT = 5.0  # only ever reached when a test fails


def request_body(thread_id: str, run_id: str, n: int) -> str:
    return json.dumps({"thread_id": thread_id, "run_id": run_id, "metadata": {"n": str(n)}})


def sqs_record(message_id: str, body: str, *, group: str | None = None) -> dict[str, Any]:
    attributes = {
        "ApproximateReceiveCount": "1",
        "SentTimestamp": "1767225600000",
        "SenderId": "AIDAEXAMPLE",
        "ApproximateFirstReceiveTimestamp": "1767225600001",
    }
    if group is not None:
        attributes |= {"MessageGroupId": group, "MessageDeduplicationId": message_id, "SequenceNumber": "1"}
    return {
        "messageId": message_id,
        "receiptHandle": f"handle-{message_id}",
        "body": body,
        "attributes": attributes,
        "messageAttributes": {},
        "md5OfBody": "0" * 32,
        "eventSource": "aws:sqs",
        "eventSourceARN": QUEUE_ARN + (".fifo" if group is not None else ""),
        "awsRegion": "eu-west-1",
    }


def batch(*records: dict[str, Any]) -> dict[str, Any]:
    return {"Records": list(records)}


@dataclass
class FakeRecordHandler:
    """Records what it processed, on which thread, and how many ran at once; fails the ids it is told to."""

    fail: set[str] = field(default_factory=set)
    meet: threading.Barrier | None = None
    lane_of: Callable[[SQSRecord], str] = lambda record: record.message_id
    processed: list[str] = field(default_factory=list)
    threads: set[threading.Thread] = field(default_factory=set)
    peak: int = 0
    peak_per_lane: int = 0
    _running: int = 0
    _running_per_lane: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, record: SQSRecord) -> str:
        lane = self.lane_of(record)
        with self._lock:
            self.processed.append(record.message_id)
            self.threads.add(threading.current_thread())
            self._running += 1
            self._running_per_lane[lane] = self._running_per_lane.get(lane, 0) + 1
            self.peak = max(self.peak, self._running)
            self.peak_per_lane = max(self.peak_per_lane, self._running_per_lane[lane])
        try:
            if self.meet is not None:
                self.meet.wait(BARRIER_TIMEOUT)
            if record.message_id in self.fail:
                raise RuntimeError(f"{record.message_id} failed")
            return "tagged"
        finally:
            with self._lock:
                self._running -= 1
                self._running_per_lane[lane] -= 1


def run_of(record: SQSRecord) -> str:
    body = json.loads(record.body)
    detail = body.get("detail", body)
    return f"{detail['thread_id']}/{detail['run_id']}"


def process(event: dict[str, Any], handler: FakeRecordHandler, *, max_concurrency: int = 10) -> set[str]:
    response = process_partial_response(
        event=event,
        record_handler=handler,
        processor=ConcurrentBatchProcessor(max_concurrency=max_concurrency),
    )
    failures = [str(item["itemIdentifier"]) for item in response["batchItemFailures"]]
    assert len(failures) == len(set(failures)), "a message is reported failed twice"
    return set(failures)


# --- the partial batch response ------------------------------------------------------------------


def test_all_records_succeeding_report_no_failure() -> None:
    event = batch(*(sqs_record(f"m{i}", request_body(f"t{i}", "r", i)) for i in range(5)))
    handler = FakeRecordHandler()

    assert process(event, handler) == set()
    assert sorted(handler.processed) == [f"m{i}" for i in range(5)]


def test_partial_batch_response_lists_exactly_the_failed_message_ids() -> None:
    event = batch(*(sqs_record(f"m{i}", request_body(f"t{i}", "r", i)) for i in range(6)))
    handler = FakeRecordHandler(fail={"m1", "m4"})

    assert process(event, handler) == {"m1", "m4"}
    assert sorted(handler.processed) == [f"m{i}" for i in range(6)]


def test_entirely_failed_batch_returns_every_id_instead_of_raising() -> None:
    event = batch(*(sqs_record(f"m{i}", request_body(f"t{i}", "r", i)) for i in range(4)))
    handler = FakeRecordHandler(fail={"m0", "m1", "m2", "m3"})

    assert process(event, handler) == {"m0", "m1", "m2", "m3"}


def test_entirely_failed_single_lane_batch_returns_every_id_instead_of_raising() -> None:
    event = batch(sqs_record("m0", request_body("t", "r", 0)), sqs_record("m1", request_body("t", "r", 1)))
    handler = FakeRecordHandler(fail={"m0"})

    assert process(event, handler) == {"m0", "m1"}


# --- order within a run --------------------------------------------------------------------------


def test_records_for_the_same_run_are_processed_one_at_a_time_in_arrival_order() -> None:
    event = batch(
        sqs_record("a1", request_body("thread_a", "run_a", 1)),
        sqs_record("b1", request_body("thread_b", "run_b", 1)),
        sqs_record("a2", request_body("thread_a", "run_a", 2)),
        sqs_record("a3", request_body("thread_a", "run_a", 3)),
        sqs_record("b2", request_body("thread_b", "run_b", 2)),
        sqs_record("a4", request_body("thread_a", "run_a", 4)),
    )
    handler = FakeRecordHandler(lane_of=run_of)

    assert process(event, handler) == set()
    assert [m for m in handler.processed if m.startswith("a")] == ["a1", "a2", "a3", "a4"]
    assert [m for m in handler.processed if m.startswith("b")] == ["b1", "b2"]
    assert handler.peak_per_lane == 1


def test_after_a_failure_later_records_of_that_run_are_failed_without_being_processed() -> None:
    event = batch(
        sqs_record("a1", request_body("thread_a", "run_a", 1)),
        sqs_record("a2", request_body("thread_a", "run_a", 2)),
        sqs_record("b1", request_body("thread_b", "run_b", 1)),
        sqs_record("a3", request_body("thread_a", "run_a", 3)),
        sqs_record("a4", request_body("thread_a", "run_a", 4)),
        sqs_record("b2", request_body("thread_b", "run_b", 2)),
    )
    handler = FakeRecordHandler(fail={"a2"})

    assert process(event, handler) == {"a2", "a3", "a4"}
    assert "a3" not in handler.processed
    assert "a4" not in handler.processed
    assert {"a1", "a2", "b1", "b2"} <= set(handler.processed)


def test_same_run_in_another_envelope_shares_the_order() -> None:
    wrapped = json.dumps(
        {"id": "evt-1", "detail-type": "Tag Run Requested", "detail": json.loads(request_body("t", "r", 2))}
    )
    event = batch(sqs_record("m1", request_body("t", "r", 1)), sqs_record("m2", wrapped))
    handler = FakeRecordHandler(fail={"m1"})

    assert process(event, handler) == {"m1", "m2"}
    assert handler.processed == ["m1"]


def test_same_run_id_in_another_thread_is_another_run() -> None:
    event = batch(
        sqs_record("m1", request_body("thread_a", "run_1", 1)),
        sqs_record("m2", request_body("thread_b", "run_1", 2)),
    )
    handler = FakeRecordHandler(fail={"m1"})

    assert process(event, handler) == {"m1"}
    assert "m2" in handler.processed


def test_bodies_that_are_not_requests_do_not_block_each_other() -> None:
    event = batch(sqs_record("m1", "not json"), sqs_record("m2", "not json either"), sqs_record("m3", "[]"))
    handler = FakeRecordHandler(fail={"m1"})

    assert process(event, handler) == {"m1"}
    assert sorted(handler.processed) == ["m1", "m2", "m3"]


# --- FIFO message groups -------------------------------------------------------------------------


def test_fifo_group_stops_at_its_first_failure_and_other_groups_go_on() -> None:
    event = batch(
        sqs_record("g1-1", request_body("t1", "r1", 1), group="g1"),
        sqs_record("g2-1", request_body("t4", "r4", 1), group="g2"),
        sqs_record("g1-2", request_body("t2", "r2", 2), group="g1"),
        sqs_record("g1-3", request_body("t3", "r3", 3), group="g1"),
        sqs_record("g2-2", request_body("t5", "r5", 2), group="g2"),
    )
    handler = FakeRecordHandler(fail={"g1-2"})

    assert process(event, handler) == {"g1-2", "g1-3"}
    assert "g1-3" not in handler.processed
    assert [m for m in handler.processed if m.startswith("g1")] == ["g1-1", "g1-2"]
    assert [m for m in handler.processed if m.startswith("g2")] == ["g2-1", "g2-2"]


def test_fifo_group_is_processed_one_at_a_time_in_arrival_order_even_for_different_runs() -> None:
    event = batch(*(sqs_record(f"g-{i}", request_body(f"t{i}", f"r{i}", i), group="g") for i in range(5)))
    handler = FakeRecordHandler(lane_of=lambda record: "g")

    assert process(event, handler) == set()
    assert handler.processed == [f"g-{i}" for i in range(5)]
    assert handler.peak_per_lane == 1


def test_fifo_records_for_the_same_run_in_two_groups_still_keep_the_runs_order() -> None:
    event = batch(
        sqs_record("g1-1", request_body("thread_a", "run_a", 1), group="g1"),
        sqs_record("g2-1", request_body("thread_a", "run_a", 2), group="g2"),
    )
    handler = FakeRecordHandler(fail={"g1-1"})

    assert process(event, handler) == {"g1-1", "g2-1"}
    assert handler.processed == ["g1-1"]


def test_fifo_record_whose_handler_returns_does_not_stop_its_group() -> None:
    # A permanent failure is dead-lettered by the handler, which then returns: the group goes on.
    event = batch(*(sqs_record(f"g-{i}", "not a request", group="g") for i in range(3)))
    handler = FakeRecordHandler()

    assert process(event, handler) == set()
    assert handler.processed == ["g-0", "g-1", "g-2"]


# --- concurrency ---------------------------------------------------------------------------------


def test_records_of_different_runs_are_processed_concurrently() -> None:
    event = batch(
        sqs_record("a", request_body("thread_a", "run_a", 1)),
        sqs_record("b", request_body("thread_b", "run_b", 1)),
    )
    # Each record waits until the other one is in flight: serial processing breaks the barrier.
    handler = FakeRecordHandler(meet=threading.Barrier(2))

    assert process(event, handler) == set()
    assert handler.peak == 2


def test_fifo_groups_are_processed_concurrently() -> None:
    event = batch(sqs_record("a", "x", group="g1"), sqs_record("b", "y", group="g2"))
    handler = FakeRecordHandler(meet=threading.Barrier(2))

    assert process(event, handler) == set()


def test_never_more_records_in_flight_than_max_concurrency() -> None:
    event = batch(*(sqs_record(f"m{i}", request_body(f"t{i}", "r", i)) for i in range(8)))
    # Pairs meet at the barrier: two in flight at once is required, a third would be visible in `peak`.
    handler = FakeRecordHandler(meet=threading.Barrier(2))

    assert process(event, handler, max_concurrency=2) == set()
    assert handler.peak == 2
    assert len(handler.threads) <= 2
    assert sorted(handler.processed) == sorted(f"m{i}" for i in range(8))


def test_max_concurrency_of_one_processes_the_batch_in_arrival_order() -> None:
    event = batch(*(sqs_record(f"m{i}", request_body(f"t{i}", "r", i)) for i in range(6)))
    handler = FakeRecordHandler()

    assert process(event, handler, max_concurrency=1) == set()
    assert handler.processed == [f"m{i}" for i in range(6)]
    assert handler.peak == 1


# --- records held back behind a failure ----------------------------------------------------------


@dataclass
class HeldBackOffers:
    """The processor's `held_back` callback: takes the message ids it is told to, remembers each offer."""

    take: set[str] = field(default_factory=set)
    offers: list[tuple[str, str]] = field(default_factory=list)

    def __call__(self, record: SQSRecord, blocker: SQSRecord, lambda_context: object) -> bool:
        self.offers.append((record.message_id, blocker.message_id))
        return record.message_id in self.take


def test_a_held_back_record_the_callback_takes_succeeds_and_the_lane_stays_blocked() -> None:
    # Given a run's lane whose first record fails, and a callback that takes (dead-letters) the second
    event = batch(*(sqs_record(f"a{i}", request_body("thread_a", "run_a", i)) for i in (1, 2, 3)))
    offers = HeldBackOffers(take={"a2"})
    # When the batch is processed
    response = process_partial_response(
        event=event,
        record_handler=FakeRecordHandler(fail={"a1"}),
        processor=ConcurrentBatchProcessor(max_concurrency=10, held_back=offers),
    )
    # Then a2 is not reported failed; a3 is still held back behind a1, and neither was processed
    assert {item["itemIdentifier"] for item in response["batchItemFailures"]} == {"a1", "a3"}
    assert offers.offers == [("a2", "a1"), ("a3", "a1")]
