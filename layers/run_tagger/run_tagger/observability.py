"""Outcome reporting through Powertools Logger and Metrics: one structured line per message."""

from __future__ import annotations

import logging
import threading
from collections import Counter
from typing import TYPE_CHECKING

from run_tagger.errors import TagRunError
from run_tagger.request import ParsedMessage

if TYPE_CHECKING:
    from aws_lambda_powertools import Logger, Metrics

# Libraries that would log request or response bodies (and so secret values) at DEBUG.
QUIET_LIBRARIES = ("botocore", "boto3", "urllib3", "aws_xray_sdk")


def quiet_libraries() -> None:
    """Keep third-party DEBUG logging off whatever the function's log level: it can carry key values."""
    for name in QUIET_LIBRARIES:
        logging.getLogger(name).setLevel(logging.INFO if name != "botocore" else logging.WARNING)


class PowertoolsOutcomeLog:
    """The pipeline's `OutcomeLog`: thread-safe, since records of a batch run concurrently."""

    def __init__(self, logger: Logger, metrics: Metrics) -> None:
        from aws_lambda_powertools.metrics import MetricUnit
        from aws_lambda_powertools.metrics.functions import is_metrics_disabled

        self._logger = logger
        self._metrics = metrics
        self._count = MetricUnit.Count
        self._ms = MetricUnit.Milliseconds
        self._lock = threading.Lock()
        # Counts are added up per invocation and emitted once: one data point per metric and batch.
        self._counts: Counter[str] = Counter()
        # Powertools keeps (and at 100 values prints) metrics even when disabled: add none then.
        self._metrics_enabled = not is_metrics_disabled()

    def tagged(self, parsed: ParsedMessage, message_id: str, latency_ms: float) -> None:
        request = parsed.request
        self._logger.info(
            "run tagged",
            extra={
                "message_id": message_id,
                "thread_id": request.thread_id,
                "run_id": request.run_id,
                "tenant": request.tenant,
                "envelope": parsed.envelope,
                "portkey_latency_ms": round(latency_ms, 1),
            },
        )
        with self._lock:
            self._counts["RunsTagged"] += 1
            if self._metrics_enabled:
                self._metrics.add_metric(name="PortkeyLatency", unit=self._ms, value=round(latency_ms, 1))

    def duplicate(self, parsed: ParsedMessage, message_id: str) -> None:
        self._logger.info(
            "duplicate skipped: the request was already tagged",
            extra={"message_id": message_id, "dedup_key": parsed.scoped_key, "run_id": parsed.request.run_id},
        )
        with self._lock:
            self._counts["DuplicatesSkipped"] += 1

    def not_remembered(self, parsed: ParsedMessage, message_id: str) -> None:
        self._logger.warning(
            "run tagged, but the idempotency table did not record it: "
            "a later duplicate would be tagged again",
            extra={"message_id": message_id, "dedup_key": parsed.scoped_key, "run_id": parsed.request.run_id},
        )
        with self._lock:
            self._counts["CompletionsNotRecorded"] += 1

    def failed(
        self, error: TagRunError, message_id: str, *, dead_lettered: bool, last_delivery: bool = False
    ) -> None:
        """`last_delivery`: SQS moves the message to the DLQ next, as the function could not (no DLQ
        answer, or no time left)."""
        fate = "failed" if not error.retryable else "will be retried"
        if dead_lettered:
            fate = "dead-lettered after its last delivery" if error.retryable else "dead-lettered"
        elif last_delivery:
            fate = "left to the queue's redrive, without its reason (last delivery, not dead-lettered)"
        self._logger.warning(
            f"request {fate}: {error.code}",
            extra={
                "message_id": message_id,
                "error_code": error.code,
                "error_message": error.message,
                "error_status": error.status,
                "retryable": error.retryable,
            },
        )
        retried = error.retryable and not dead_lettered and not last_delivery
        with self._lock:
            self._counts["RequestsRetried" if retried else "RequestsFailed"] += 1

    def crashed(self, message_id: str, *, last_delivery: bool = False) -> None:
        fate = (
            "the queue's redrive moves it to the DLQ (its last delivery)"
            if last_delivery
            else "it will be retried"
        )
        self._logger.exception(f"unexpected error; {fate}", extra={"message_id": message_id})
        with self._lock:
            self._counts["RequestsFailed" if last_delivery else "RequestsRetried"] += 1

    def emit_counts(self) -> None:
        """Add this invocation's counts to the metrics (flushed by `log_metrics` when the handler returns)."""
        with self._lock:
            counts, self._counts = self._counts, Counter()
        if not self._metrics_enabled:
            return
        for name, value in sorted(counts.items()):
            self._metrics.add_metric(name=name, unit=self._count, value=value)
