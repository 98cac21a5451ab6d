"""`TagRunProducer`: how other Python services send tag-run requests, validated before they leave.

    producer = TagRunProducer.to_queue(queue_url)        # or TagRunProducer.to_bus("run-tagger")
    producer.send("thread_abc", "run_abc", {"customer": "acme"}, request_id="billing-42")
    result = producer.send_batch(requests)               # SendMessageBatch / PutEvents, 10 per call

A request the function would refuse is refused here with the same `InvalidRequest` message.
A FIFO queue (its URL ends in `.fifo`) needs `message_group_id=`; requests of one group are processed in
order. There a request's `request_id`, scoped by its tenant as the function scopes it, is also its
MessageDeduplicationId; a request without one relies on the queue's content-based de-duplication.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from run_tagger.errors import InvalidRequest, PublishFailed
from run_tagger.publisher import group_calls
from run_tagger.request import EVENTBRIDGE_DETAIL_TYPE, TagRunRequest, validate_request

if TYPE_CHECKING:
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import SendMessageBatchRequestEntryTypeDef

Via = Literal["sqs", "eventbridge"]

# What SQS takes as a MessageDeduplicationId; any other key is sent as its SHA-256.
_DEDUPLICATION_ID = re.compile(r"[!-~]{1,128}")


@dataclass(frozen=True, slots=True)
class _Entry:
    """A validated request ready to go: its position in the input, its JSON body, its de-duplication key."""

    index: int
    body: str
    deduplication_id: str | None


@dataclass(frozen=True, slots=True)
class EntryFailure:
    """One request of a batch that was not sent: its position in the input, and why."""

    index: int
    code: str
    message: str


@dataclass(slots=True)
class BatchResult:
    """What became of a batch: the ids of what was sent (in input order) and what was not."""

    sent: dict[int, str] = field(default_factory=dict)
    failed: list[EntryFailure] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed


class TagRunProducer:
    """Sends tag-run requests to the queue (SQS) or as `Tag Run Requested` events (EventBridge)."""

    def __init__(
        self,
        *,
        via: Via,
        queue_url: str | None = None,
        sqs: SQSClient | None = None,
        bus_name: str | None = None,
        source: str = "run-tagger.producer",
        events: EventBridgeClient | None = None,
    ) -> None:
        if via == "sqs" and not queue_url:
            raise ValueError("a queue_url is needed to send through SQS")
        if via == "eventbridge" and not bus_name:
            raise ValueError("a bus_name is needed to send through EventBridge")
        self.via = via
        self._queue_url = queue_url or ""
        self._bus_name = bus_name or ""
        self._source = source
        self._sqs = sqs
        self._events = events

    @classmethod
    def to_queue(cls, queue_url: str, *, sqs: SQSClient | None = None) -> TagRunProducer:
        return cls(via="sqs", queue_url=queue_url, sqs=sqs)

    @classmethod
    def to_bus(
        cls, bus_name: str, *, source: str = "run-tagger.producer", events: EventBridgeClient | None = None
    ) -> TagRunProducer:
        return cls(via="eventbridge", bus_name=bus_name, source=source, events=events)

    @property
    def fifo(self) -> bool:
        """True for a FIFO queue: each send then needs a `message_group_id`."""
        return self.via == "sqs" and self._queue_url.endswith(".fifo")

    def send(
        self,
        thread_id: str,
        run_id: str,
        metadata: Mapping[str, str],
        *,
        request_id: str | None = None,
        tenant: str | None = None,
        message_group_id: str | None = None,
    ) -> str:
        """Send one request; returns the SQS MessageId or the EventBridge EventId.

        `message_group_id` is required for a FIFO queue and refused otherwise (ValueError)."""
        payload: dict[str, Any] = {"thread_id": thread_id, "run_id": run_id, "metadata": dict(metadata)}
        if request_id is not None:
            payload["request_id"] = request_id
        if tenant is not None:
            payload["tenant"] = tenant
        result = self.send_batch([payload], message_group_id=message_group_id)
        if result.failed:
            failure = result.failed[0]
            if failure.code == InvalidRequest.code:
                raise InvalidRequest(failure.message)
            raise PublishFailed(f"{failure.code}: {failure.message}")
        return result.sent[0]

    def send_batch(
        self,
        requests: Iterable[TagRunRequest | Mapping[str, Any] | object],
        *,
        message_group_id: str | None = None,
    ) -> BatchResult:
        """Validate every request, then send the valid ones in calls of ten; failures are per entry.

        All of them go in `message_group_id`, required for a FIFO queue and refused otherwise (ValueError)."""
        self._check_group(message_group_id)
        result = BatchResult()
        entries: list[_Entry] = []
        for index, request in enumerate(requests):
            try:
                if isinstance(request, TagRunRequest):
                    valid = request
                else:
                    valid = validate_request(dict(request) if isinstance(request, Mapping) else request)
            except InvalidRequest as error:
                result.failed.append(EntryFailure(index, error.code, error.message))
                continue
            body = json.dumps(valid.model_dump(mode="json", exclude_none=True))
            entries.append(_Entry(index, body, _deduplication_id(valid) if self.fifo else None))
        from botocore.exceptions import BotoCoreError, ClientError

        for chunk in _chunks(entries):
            try:
                if self.via == "sqs":
                    self._send_to_queue(chunk, message_group_id, result)
                else:
                    self._send_to_bus(chunk, result)
            except ClientError as exc:
                code = str(exc.response.get("Error", {}).get("Code", "ClientError"))
                message = str(exc.response.get("Error", {}).get("Message", ""))
                result.failed.extend(EntryFailure(entry.index, code, message) for entry in chunk)
            except BotoCoreError as exc:
                result.failed.extend(
                    EntryFailure(entry.index, type(exc).__name__, str(exc)) for entry in chunk
                )
        result.failed.sort(key=lambda failure: failure.index)
        return result

    def _check_group(self, message_group_id: str | None) -> None:
        if self.fifo and not message_group_id:
            raise ValueError(f"{self._queue_url} is a FIFO queue: give a message_group_id")
        if not self.fifo and message_group_id is not None:
            where = "the bus rule sets the group" if self.via == "eventbridge" else "not a FIFO queue"
            raise ValueError(f"message_group_id is for a FIFO queue only ({where})")

    def _send_to_queue(self, chunk: list[_Entry], group: str | None, result: BatchResult) -> None:
        sqs = self._sqs or _client("sqs")
        answer = sqs.send_message_batch(
            QueueUrl=self._queue_url, Entries=[_queue_entry(entry, group) for entry in chunk]
        )
        for sent in answer.get("Successful", []):
            result.sent[int(sent["Id"])] = sent["MessageId"]
        for failed in answer.get("Failed", []):
            result.failed.append(EntryFailure(int(failed["Id"]), failed["Code"], failed.get("Message", "")))

    def _send_to_bus(self, chunk: list[_Entry], result: BatchResult) -> None:
        events = self._events or _client("events")
        answer = events.put_events(
            Entries=[
                {
                    "EventBusName": self._bus_name,
                    "Source": self._source,
                    "DetailType": EVENTBRIDGE_DETAIL_TYPE,
                    "Detail": entry.body,
                }
                for entry in chunk
            ]
        )
        for sent, answered in zip(chunk, answer["Entries"], strict=False):
            if answered.get("EventId"):
                result.sent[sent.index] = answered["EventId"]
            else:
                result.failed.append(
                    EntryFailure(
                        sent.index, answered.get("ErrorCode", "error"), answered.get("ErrorMessage", "")
                    )
                )


def _queue_entry(entry: _Entry, group: str | None) -> SendMessageBatchRequestEntryTypeDef:
    item: SendMessageBatchRequestEntryTypeDef = {"Id": str(entry.index), "MessageBody": entry.body}
    if group is not None:
        item["MessageGroupId"] = group
    if entry.deduplication_id is not None:
        item["MessageDeduplicationId"] = entry.deduplication_id
    return item


def _deduplication_id(request: TagRunRequest) -> str | None:
    """The function's own de-duplication key (`{tenant}:{request_id}`). SQS drops a message whose id it has
    seen in the last five minutes, whatever became of the first, so a resend within them is dropped even
    after a permanent failure (the function itself would have processed it)."""
    if request.request_id is None:
        return None
    key = f"{request.tenant or ''}:{request.request_id}"
    return key if _DEDUPLICATION_ID.fullmatch(key) else hashlib.sha256(key.encode()).hexdigest()


def _chunks(entries: list[_Entry]) -> list[list[_Entry]]:
    """Calls of at most ten entries and 256 KB (each entry's other fields counted generously as 64)."""
    weights = [len(entry.body.encode()) + 64 for entry in entries]
    return [[entries[i] for i in call] for call in group_calls(weights)]


def _client(service: Literal["sqs", "events"]) -> Any:
    import boto3

    return boto3.client(service)
