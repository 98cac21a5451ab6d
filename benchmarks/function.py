"""The real handler under measurement: configured for the stack, fed SQS batches, timed and counted.

A batch is sent to the stack's queue and handed to `functions/tag_run/app.py`'s `lambda_handler` by the
local event source mapping (`local.poller.QueuePoller`), which receives it, builds Lambda's SQS event and
deletes what the handler did not report as failed. Only the `lambda_handler` call itself is timed.

Batches of a thousand skip the queue: moto's ReceiveMessage scans the whole queue, so gathering 1,000
messages ten at a time takes longer than the figure. They get the event Lambda would build from those
ReceiveMessage results instead; the handler reads only the records, so it cannot tell the difference.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Any

from benchmarks.aws_calls import AwsCallCounter
from local.poller import LocalLambdaContext, QueuePoller
from local.stack import load_function

if TYPE_CHECKING:
    from mypy_boto3_sqs.type_defs import SendMessageBatchRequestEntryTypeDef

    from benchmarks.stack_process import StackProcess

FUNCTION_TIMEOUT_SECONDS = 60.0  # template.yaml's default FunctionTimeout


class BenchmarkError(Exception):
    """The handler did not do what the figure assumes (a message failed, a batch came short)."""


@dataclass(frozen=True)
class Invocation:
    """One `lambda_handler` call: its wall and process CPU time, and what it cost outside the process."""

    size: int
    seconds: float
    cpu_seconds: float
    calls: Counter[str]
    connections_opened: int
    emulator_cpu_seconds: float  # the stack process's CPU during the call: moto's and the stand-in's work


class FunctionUnderTest:
    """`app.lambda_handler` in this process, pointed at the stack process; its AWS calls counted."""

    def __init__(self, stack: StackProcess, counter: AwsCallCounter, *, log_level: str = "INFO") -> None:
        self._stack = stack
        self._counter = counter
        self._log_level = log_level
        self._app: ModuleType | None = None
        self._last: tuple[float, float, Counter[str], float] | None = None
        self._devnull = open(os.devnull, "w")  # noqa: SIM115 - kept for the process's lifetime

    def configure(self, *, max_concurrency: int, **overrides: str) -> None:
        """A fresh Lambda environment: the next invocation builds clients and fetches keys again."""
        os.environ.pop("AWS_PROFILE", None)
        os.environ.update(
            self._stack.function_environment(
                MAX_CONCURRENCY=str(max_concurrency), POWERTOOLS_LOG_LEVEL=self._log_level, **overrides
            )
        )
        app = self._load()
        app.reset()

    def invoke(self, size: int, *, via_queue: bool = True) -> Invocation:
        """Hand the handler one batch of `size` requests for distinct runs; raise unless all succeed."""
        bodies = _bodies(size)
        self._stack.clear_requests()
        self._last = None
        if via_queue:
            self._send(bodies)
            outcome = self._poller(size).poll_once()
            received, failed = outcome.received, len(outcome.failed)
            error = outcome.error
        else:
            response = self._timed_handler(self._event(bodies), self._context())
            received, failed, error = size, len(response.get("batchItemFailures") or []), None
        if self._last is None or received != size:
            raise BenchmarkError(f"expected one batch of {size}, the handler got {received}")
        if failed or error:
            raise BenchmarkError(f"{failed} of {size} messages failed ({error or 'reported by the handler'})")
        seconds, cpu_seconds, calls, emulator_cpu_seconds = self._last
        connections = self._stack.connections_opened()
        return Invocation(size, seconds, cpu_seconds, calls, connections, emulator_cpu_seconds)

    def _poller(self, size: int) -> QueuePoller:
        return QueuePoller(
            self._stack.sqs(),
            self._stack.resources.queue_url,
            self._stack.resources.queue_arn,
            self._stack.region,
            self._timed_handler,
            batch_size=size,
            # Lambda needs a window for batches over 10; the queue already holds the batch, so none is waited.
            batching_window_seconds=1.0 if size > 10 else 0.0,
            function_timeout_seconds=FUNCTION_TIMEOUT_SECONDS,
            wait_seconds=0,
        )

    def _timed_handler(self, event: dict[str, Any], context: Any) -> Any:
        handler = self._load().lambda_handler
        self._counter.reset()
        emulator_started = self._stack.cpu_seconds()  # asked before and after the timed call, not during it
        cpu_started, started = time.process_time(), time.perf_counter()
        response = handler(event, context)
        seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
        emulator_cpu_seconds = self._stack.cpu_seconds() - emulator_started
        self._last = (seconds, cpu_seconds, self._counter.snapshot(), emulator_cpu_seconds)
        return response

    def _send(self, bodies: list[str]) -> None:
        sqs = self._stack.sqs()
        for start in range(0, len(bodies), 10):
            entries: list[SendMessageBatchRequestEntryTypeDef] = [
                {"Id": str(i), "MessageBody": body} for i, body in enumerate(bodies[start : start + 10])
            ]
            answer = sqs.send_message_batch(QueueUrl=self._stack.resources.queue_url, Entries=entries)
            if answer.get("Failed"):
                raise BenchmarkError(f"SendMessageBatch failed: {answer['Failed']}")

    def _event(self, bodies: list[str]) -> dict[str, Any]:
        """Lambda's SQS event for `bodies`, as the event source mapping builds it from ReceiveMessage."""
        now = str(int(time.time() * 1000))
        return {
            "Records": [
                {
                    "messageId": str(uuid.uuid4()),
                    "receiptHandle": uuid.uuid4().hex,
                    "body": body,
                    "attributes": {
                        "ApproximateReceiveCount": "1",
                        "SentTimestamp": now,
                        "SenderId": "AIDAEXAMPLEBENCHMARK",
                        "ApproximateFirstReceiveTimestamp": now,
                    },
                    "messageAttributes": {},
                    "md5OfBody": hashlib.md5(body.encode(), usedforsecurity=False).hexdigest(),
                    "eventSource": "aws:sqs",
                    "eventSourceARN": self._stack.resources.queue_arn,
                    "awsRegion": self._stack.region,
                }
                for body in bodies
            ]
        }

    def _context(self) -> LocalLambdaContext:
        return LocalLambdaContext(
            function_name="run-tagger-bench",
            invoked_function_arn=f"arn:aws:lambda:{self._stack.region}:123456789012:function:run-tagger-bench",
            deadline=time.monotonic() + FUNCTION_TIMEOUT_SECONDS,
        )

    def _load(self) -> ModuleType:
        if self._app is None:
            self._app = load_function()
            # One JSON line per message is part of the CPU cost (Lambda pipes stdout to CloudWatch): it is
            # formatted and written as deployed, but to /dev/null instead of over the table.
            handler = self._app.logger.registered_handler
            if isinstance(handler, logging.StreamHandler):
                handler.setStream(self._devnull)
        return self._app


def _bodies(size: int) -> list[str]:
    """Tag-run requests for `size` runs no earlier batch named, so no de-duplication short-cuts them."""
    batch = uuid.uuid4().hex[:12]
    return [
        f'{{"thread_id": "thread_bench", "run_id": "run_{batch}_{i}", "metadata": {{"batch": "{batch}"}}}}'
        for i in range(size)
    ]
