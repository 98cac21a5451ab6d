"""Powertools' SQS batch processor, run concurrently in ordered lanes.

Records of one lane (the same run, or the same FIFO message group) are processed one after the other,
in arrival order, and a lane stops at its first failure so that later requests never overtake an
earlier one that will be redelivered. Lanes run side by side, at most `max_concurrency` at once.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType

from run_tagger.request import run_key_hint


class LaneBlockedError(Exception):
    """An earlier record of the same lane failed, so this one waits for redelivery."""


def lane_of(record: dict[str, Any]) -> Hashable:
    """FIFO records share their message group's lane; others share the lane of the run they name."""
    group = (record.get("attributes") or {}).get("MessageGroupId")
    if group:
        return ("group", group)
    key = run_key_hint(str(record.get("body", "")))
    return ("run", *key) if key else ("message", record.get("messageId"))


class ConcurrentBatchProcessor(BatchProcessor):
    """A `BatchProcessor` for SQS that processes lanes concurrently; the partial response is Powertools'."""

    def __init__(self, *, max_concurrency: int, lane: Callable[[dict[str, Any]], Hashable] = lane_of) -> None:
        super().__init__(EventType.SQS, raise_on_entire_batch_failure=False)
        self._max_concurrency = max_concurrency
        self._lane = lane

    def process(self) -> list[tuple[Any, ...]]:
        lanes: dict[Hashable, list[tuple[int, dict[str, Any]]]] = {}
        for index, record in enumerate(self.records):
            lanes.setdefault(self._lane(record), []).append((index, record))
        results: list[tuple[Any, ...]] = [()] * len(self.records)
        if len(lanes) <= 1 or self._max_concurrency == 1:
            for lane in lanes.values():
                self._run_lane(lane, results)
            return results
        with ThreadPoolExecutor(max_workers=min(self._max_concurrency, len(lanes))) as pool:
            # list() re-raises anything a lane let escape, as the serial processor would.
            list(pool.map(lambda lane: self._run_lane(lane, results), lanes.values()))
        return results

    def _run_lane(self, lane: list[tuple[int, dict[str, Any]]], results: list[tuple[Any, ...]]) -> None:
        blocked = False
        for index, record in lane:
            if blocked:
                error = LaneBlockedError("an earlier request for the same run or message group failed")
                results[index] = self.failure_handler(
                    record=self._to_batch_type(record, event_type=self.event_type),
                    exception=(LaneBlockedError, error, None),
                )
                continue
            results[index] = self._process_record(record)
            blocked = results[index][0] == "fail"
