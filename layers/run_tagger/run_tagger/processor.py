"""Powertools' SQS batch processor, run concurrently in ordered lanes.

Records of one lane (the same run, or the same FIFO message group) are processed one after the other,
in arrival order, and a lane stops at its first failure so that later requests never overtake an
earlier one that will be redelivered. Lanes run side by side, at most `max_concurrency` at once.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Hashable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from run_tagger.errors import InvalidRequest
from run_tagger.request import parse_message


class LaneBlockedError(Exception):
    """An earlier record of the same lane failed, so this one waits for redelivery."""


def _never_taken(record: SQSRecord, blocker: SQSRecord, lambda_context: Any) -> bool:
    return False


def lane_keys(record: dict[str, Any]) -> list[Hashable]:
    """What orders a record: its FIFO message group, the run it names and its de-duplication key.

    Duplicates of one request share a lane too, so the second finds the first one's record completed.
    A record that names nothing valid is a lane of its own.
    """
    keys: list[Hashable] = []
    group = (record.get("attributes") or {}).get("MessageGroupId")
    if group:
        keys.append(("group", group))
    try:
        parsed = parse_message(str(record.get("body", "")), str(record.get("messageId", "")))
    except InvalidRequest:
        parsed = None
    if parsed is not None:
        keys.extend([("run", *parsed.run_key), ("request", parsed.scoped_key)])
    return keys or [("message", record.get("messageId"))]


def group_lanes(
    records: list[dict[str, Any]], keys_of: Callable[[dict[str, Any]], list[Hashable]]
) -> list[list[int]]:
    """Indexes of the records, grouped so that records sharing any key share a lane, in arrival order."""
    parent = list(range(len(records)))

    def root(index: int) -> int:
        while parent[index] != index:
            parent[index] = parent[parent[index]]
            index = parent[index]
        return index

    first_holder: dict[Hashable, int] = {}
    for index, record in enumerate(records):
        for key in keys_of(record):
            if key in first_holder:
                parent[root(index)] = root(first_holder[key])
            else:
                first_holder[key] = index
    lanes: dict[int, list[int]] = {}
    for index in range(len(records)):
        lanes.setdefault(root(index), []).append(index)
    return list(lanes.values())


class ConcurrentBatchProcessor(BatchProcessor):
    """A `BatchProcessor` for SQS that processes lanes concurrently; the partial response is Powertools'."""

    def __init__(
        self,
        *,
        max_concurrency: int,
        keys: Callable[[dict[str, Any]], list[Hashable]] = lane_keys,
        lane_scope: Callable[[], AbstractContextManager[object]] = contextlib.nullcontext,
        held_back: Callable[[SQSRecord, SQSRecord, Any], bool] = _never_taken,
    ) -> None:
        super().__init__(EventType.SQS, raise_on_entire_batch_failure=False)
        self._max_concurrency = max_concurrency
        self._keys = keys
        # Entered around each lane: the event batcher counts the lanes still running.
        self._lane_scope = lane_scope
        # Offered each record held back behind a failure, with the record that failed: True when it took
        # care of it (dead-lettered it). It must not raise.
        self._held_back = held_back

    def process(self) -> list[tuple[Any, ...]]:
        records: list[dict[str, Any]] = list(self.records)
        lanes = group_lanes(records, self._keys)
        results: list[tuple[Any, ...]] = [()] * len(records)
        if len(lanes) <= 1 or self._max_concurrency == 1:
            for lane in lanes:
                self._run_lane(lane, records, results)
            return results
        with ThreadPoolExecutor(max_workers=min(self._max_concurrency, len(lanes))) as pool:
            # list() re-raises anything a lane let escape, as the serial processor would.
            list(pool.map(lambda lane: self._run_lane(lane, records, results), lanes))
        return results

    def _run_lane(
        self, lane: list[int], records: list[dict[str, Any]], results: list[tuple[Any, ...]]
    ) -> None:
        with self._lane_scope():
            self._run_records(lane, records, results)

    def _run_records(
        self, lane: list[int], records: list[dict[str, Any]], results: list[tuple[Any, ...]]
    ) -> None:
        blocker: object = None  # the lane's failed record, as the record handler saw it
        for index in lane:
            record = records[index]
            if blocker is not None:
                item = self._to_batch_type(record, event_type=self.event_type)
                context = getattr(self, "lambda_context", None)
                if (
                    isinstance(item, SQSRecord)
                    and isinstance(blocker, SQSRecord)
                    and self._held_back(item, blocker, context)
                ):
                    results[index] = self.success_handler(record=item, result="dead_lettered")
                    continue
                error = LaneBlockedError("an earlier request for the same run or message group failed")
                results[index] = self.failure_handler(record=item, exception=(LaneBlockedError, error, None))
                continue
            results[index] = self._process_record(record)
            if results[index][0] == "fail":
                blocker = self._to_batch_type(record, event_type=self.event_type)
