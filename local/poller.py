"""Feeds a handler from an SQS queue the way Lambda's SQS event source mapping does.

Lambda receives a batch, invokes the function with it, deletes the records the function did not
report in `batchItemFailures`, and leaves the others to reappear when their visibility timeout ends.
Locally the failed records are made visible again at once, so redelivery (and the redrive to the DLQ
after maxReceiveCount) happens in one run instead of after the queue's visibility timeout.
"""

from __future__ import annotations

import base64
import logging
import math
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import MessageAttributeValueOutputTypeDef, MessageTypeDef

logger = logging.getLogger(__name__)

# The context type is left open: handlers annotate it with Powertools' LambdaContext, a class.
Handler = Callable[[dict[str, Any], Any], Any]

SQS_MAX_MESSAGES = 10  # one ReceiveMessage returns at most this many
SQS_MAX_WAIT_SECONDS = 20
# Lambda's order of the system attributes; FIFO and tracing ones follow when SQS returns them.
_ATTRIBUTE_ORDER = (
    "ApproximateReceiveCount",
    "SentTimestamp",
    "SenderId",
    "ApproximateFirstReceiveTimestamp",
)


@dataclass(frozen=True)
class LocalLambdaContext:
    """The attributes of Lambda's context object that handlers and Powertools read."""

    function_name: str
    invoked_function_arn: str
    deadline: float  # time.monotonic() at which Lambda would stop the invocation
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 256
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = ""
    log_stream_name: str = ""
    identity: None = None
    client_context: None = None

    def get_remaining_time_in_millis(self) -> int:
        # Rounded up, so 0 means the deadline has passed, never that it is a fraction of a ms away.
        return max(0, math.ceil((self.deadline - time.monotonic()) * 1000))


@dataclass
class BatchOutcome:
    """What became of one batch: `failed` are redelivered; with `error` nothing was deleted."""

    received: int
    deleted: int = 0
    failed: list[str] = field(default_factory=list)
    error: str | None = None


class QueuePoller:
    def __init__(
        self,
        sqs: SQSClient,
        queue_url: str,
        queue_arn: str,
        region: str,
        handler: Handler,
        *,
        batch_size: int = 10,
        batching_window_seconds: float = 0.0,
        function_timeout_seconds: float = 30.0,
        wait_seconds: int = 1,
        function_name: str = "run-tagger-local",
        lose_delete: Callable[[str], bool] | None = None,
    ) -> None:
        fifo = queue_arn.endswith(".fifo")
        # The limits CreateEventSourceMapping enforces, so a local setting that AWS refuses fails here too.
        if not 1 <= batch_size <= (SQS_MAX_MESSAGES if fifo else 10_000):
            raise ValueError(f"batch_size {batch_size} is outside what Lambda allows for this queue")
        if batch_size > SQS_MAX_MESSAGES and batching_window_seconds < 1:
            raise ValueError("Lambda requires a batching window of at least 1 second for batches over 10")
        self._sqs = sqs
        self._queue_url = queue_url
        self._queue_arn = queue_arn
        self._region = region
        self._handler = handler
        self._batch_size = batch_size
        self._window = batching_window_seconds
        self._timeout = function_timeout_seconds
        self._wait = min(wait_seconds, SQS_MAX_WAIT_SECONDS)
        self._function_name = function_name
        # Fault injection: a message this returns True for is not deleted after success, as when
        # Lambda's DeleteMessage fails; SQS then delivers it again.
        self._lose_delete = lose_delete or (lambda _message_id: False)
        account = queue_arn.split(":")[4]
        self._function_arn = f"arn:aws:lambda:{region}:{account}:function:{function_name}"

    def poll_once(self) -> BatchOutcome:
        """Receive one batch, invoke the handler with it, and settle each message as Lambda would."""
        messages = self._receive_batch()
        if not messages:
            return BatchOutcome(received=0)
        ids = [m["MessageId"] for m in messages]
        event = {"Records": [self._record(m) for m in messages]}
        context = self._context()
        try:
            response = self._handler(event, context)
        except Exception as exc:
            logger.exception("handler raised; the whole batch is redelivered")
            summary = next(iter(str(exc).splitlines()), "")  # the traceback is in the log above
            return self._fail_all(messages, f"handler raised {type(exc).__name__}: {summary}")
        if time.monotonic() >= context.deadline:
            # Lambda would have stopped the function and discarded whatever it returned.
            return self._fail_all(messages, f"Task timed out after {self._timeout} seconds")
        failed, error = _reported_failures(response, set(ids))
        if error is not None:
            return self._fail_all(messages, error)
        succeeded = [m for m in messages if m["MessageId"] not in failed]
        lost = [m for m in succeeded if self._lose_delete(m["MessageId"])]
        deleted, delete_error = self._delete([m for m in succeeded if m not in lost])
        self._release([m for m in messages if m["MessageId"] in failed] + lost)
        return BatchOutcome(len(messages), deleted, [i for i in ids if i in failed], delete_error)

    def run_until_drained(self, max_batches: int | None = None, idle_polls: int = 2) -> list[BatchOutcome]:
        """Poll until `idle_polls` receives in a row find nothing, or `max_batches` batches were handled."""
        outcomes: list[BatchOutcome] = []
        idle = 0
        while idle < idle_polls and (max_batches is None or len(outcomes) < max_batches):
            outcome = self.poll_once()
            if outcome.received == 0:
                idle += 1
                continue
            idle = 0
            outcomes.append(outcome)
        return outcomes

    def _fail_all(self, messages: Sequence[MessageTypeDef], error: str) -> BatchOutcome:
        # As on Lambda, a failed invocation deletes nothing: every message of the batch comes back.
        self._release(messages)
        return BatchOutcome(len(messages), failed=[m["MessageId"] for m in messages], error=error)

    def _receive_batch(self) -> list[MessageTypeDef]:
        # Gathers up to batch_size with several receives: the window opens at the first message, and the
        # batch goes out when it is full or the window closes (with no window: after the first receive).
        batch: list[MessageTypeDef] = []
        window_closes: float | None = None
        while len(batch) < self._batch_size:
            if window_closes is None:
                wait = self._wait
            else:
                left = window_closes - time.monotonic()
                if left <= 0:
                    break
                wait = min(int(left), SQS_MAX_WAIT_SECONDS)  # SQS waits whole seconds
            received = self._sqs.receive_message(
                QueueUrl=self._queue_url,
                MaxNumberOfMessages=min(SQS_MAX_MESSAGES, self._batch_size - len(batch)),
                WaitTimeSeconds=wait,
                MessageSystemAttributeNames=["All"],
                MessageAttributeNames=["All"],
            ).get("Messages", [])
            if not received:
                if window_closes is None or wait == 0:
                    break
                continue
            batch.extend(received)
            if window_closes is None:
                window_closes = time.monotonic() + self._window
        return batch

    def _record(self, message: MessageTypeDef) -> dict[str, Any]:
        system = dict(message.get("Attributes", {}))
        attributes = {k: system.pop(k) for k in _ATTRIBUTE_ORDER if k in system} | system
        record: dict[str, Any] = {
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": message["Body"],
            "attributes": attributes,
            "messageAttributes": {
                name: _message_attribute(value)
                for name, value in message.get("MessageAttributes", {}).items()
            },
        }
        if "MD5OfMessageAttributes" in message:
            record["md5OfMessageAttributes"] = message["MD5OfMessageAttributes"]
        return record | {
            "md5OfBody": message["MD5OfBody"],
            "eventSource": "aws:sqs",
            "eventSourceARN": self._queue_arn,
            "awsRegion": self._region,
        }

    def _context(self) -> LocalLambdaContext:
        stream = f"{datetime.now(UTC):%Y/%m/%d}/[$LATEST]{uuid.uuid4().hex}"
        return LocalLambdaContext(
            function_name=self._function_name,
            invoked_function_arn=self._function_arn,
            deadline=time.monotonic() + self._timeout,
            log_group_name=f"/aws/lambda/{self._function_name}",
            log_stream_name=stream,
        )

    def _delete(self, messages: Sequence[MessageTypeDef]) -> tuple[int, str | None]:
        deleted, failures = 0, []
        for chunk in _chunks(messages):
            response = self._sqs.delete_message_batch(
                QueueUrl=self._queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(chunk)],
            )
            deleted += len(response.get("Successful", []))
            failures += [f"{f['Id']}: {f.get('Message', f['Code'])}" for f in response.get("Failed", [])]
        return deleted, (f"delete failed for {len(failures)} message(s): {failures}" if failures else None)

    def _release(self, messages: Sequence[MessageTypeDef]) -> None:
        # A release that fails (a stale receipt handle) only means that message waits out its
        # visibility timeout, which is what Lambda does anyway.
        for chunk in _chunks(messages):
            self._sqs.change_message_visibility_batch(
                QueueUrl=self._queue_url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0}
                    for i, m in enumerate(chunk)
                ],
            )


def _reported_failures(response: object, batch_ids: set[str]) -> tuple[set[str], str | None]:
    """Lambda's reading of a partial batch response: (failed ids, or why the whole batch failed)."""
    # Lambda takes no response, an empty one or a null/empty batchItemFailures as full success...
    if response is None:
        return set(), None
    if not isinstance(response, dict):
        return set(), f"invalid response: expected an object, got {type(response).__name__}"
    items = response.get("batchItemFailures")
    if items is None:
        return set(), None
    # ...and anything malformed, or an id not in the batch, as failure of the whole batch.
    if not isinstance(items, list):
        return set(), "invalid response: batchItemFailures is not a list"
    failed: set[str] = set()
    for item in items:
        identifier = item.get("itemIdentifier") if isinstance(item, dict) else None
        if not isinstance(identifier, str) or identifier not in batch_ids:
            return set(), f"invalid response: itemIdentifier {identifier!r} is not a message of this batch"
        failed.add(identifier)
    return failed, None


def _message_attribute(value: MessageAttributeValueOutputTypeDef) -> dict[str, Any]:
    # Lambda's shape: camelCase, binary values base64-encoded, both list fields always present.
    attribute: dict[str, Any] = {}
    if "StringValue" in value:
        attribute["stringValue"] = value["StringValue"]
    if "BinaryValue" in value:
        attribute["binaryValue"] = base64.b64encode(value["BinaryValue"]).decode("ascii")
    attribute["stringListValues"] = list(value.get("StringListValues", []))
    attribute["binaryListValues"] = [
        base64.b64encode(b).decode("ascii") for b in value.get("BinaryListValues", [])
    ]
    attribute["dataType"] = value["DataType"]
    return attribute


def _chunks(messages: Sequence[MessageTypeDef]) -> list[Sequence[MessageTypeDef]]:
    return [messages[i : i + SQS_MAX_MESSAGES] for i in range(0, len(messages), SQS_MAX_MESSAGES)]
