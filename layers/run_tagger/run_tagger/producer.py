"""`TagRunProducer`: how other Python services send tag-run requests, validated before they leave.

    producer = TagRunProducer.to_queue(queue_url)        # or TagRunProducer.to_bus("run-tagger")
    producer.send("thread_abc", "run_abc", {"customer": "acme"}, request_id="billing-42")
    result = producer.send_batch(requests)               # SendMessageBatch / PutEvents, 10 per call

A request the function would refuse is refused here with the same `InvalidRequest` message.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from run_tagger.errors import InvalidRequest, PublishFailed
from run_tagger.publisher import group_calls
from run_tagger.request import EVENTBRIDGE_DETAIL_TYPE, TagRunRequest, validate_request

if TYPE_CHECKING:
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_sqs import SQSClient

Via = Literal["sqs", "eventbridge"]


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

    def send(
        self,
        thread_id: str,
        run_id: str,
        metadata: Mapping[str, str],
        *,
        request_id: str | None = None,
        tenant: str | None = None,
    ) -> str:
        """Send one request; returns the SQS MessageId or the EventBridge EventId."""
        payload: dict[str, Any] = {"thread_id": thread_id, "run_id": run_id, "metadata": dict(metadata)}
        if request_id is not None:
            payload["request_id"] = request_id
        if tenant is not None:
            payload["tenant"] = tenant
        result = self.send_batch([payload])
        if result.failed:
            failure = result.failed[0]
            if failure.code == InvalidRequest.code:
                raise InvalidRequest(failure.message)
            raise PublishFailed(f"{failure.code}: {failure.message}")
        return result.sent[0]

    def send_batch(self, requests: Iterable[TagRunRequest | Mapping[str, Any] | object]) -> BatchResult:
        """Validate every request, then send the valid ones in calls of ten; failures are per entry."""
        result = BatchResult()
        bodies: list[tuple[int, str]] = []
        for index, request in enumerate(requests):
            try:
                if isinstance(request, TagRunRequest):
                    valid = request
                else:
                    valid = validate_request(dict(request) if isinstance(request, Mapping) else request)
            except InvalidRequest as error:
                result.failed.append(EntryFailure(index, error.code, error.message))
                continue
            bodies.append((index, json.dumps(valid.model_dump(mode="json", exclude_none=True))))
        from botocore.exceptions import BotoCoreError, ClientError

        for chunk in _chunks(bodies):
            try:
                if self.via == "sqs":
                    self._send_to_queue(chunk, result)
                else:
                    self._send_to_bus(chunk, result)
            except ClientError as exc:
                code = str(exc.response.get("Error", {}).get("Code", "ClientError"))
                message = str(exc.response.get("Error", {}).get("Message", ""))
                result.failed.extend(EntryFailure(index, code, message) for index, _ in chunk)
            except BotoCoreError as exc:
                result.failed.extend(EntryFailure(index, type(exc).__name__, str(exc)) for index, _ in chunk)
        result.failed.sort(key=lambda failure: failure.index)
        return result

    def _send_to_queue(self, chunk: list[tuple[int, str]], result: BatchResult) -> None:
        sqs = self._sqs or _client("sqs")
        answer = sqs.send_message_batch(
            QueueUrl=self._queue_url,
            Entries=[{"Id": str(index), "MessageBody": body} for index, body in chunk],
        )
        for entry in answer.get("Successful", []):
            result.sent[int(entry["Id"])] = entry["MessageId"]
        for failed in answer.get("Failed", []):
            result.failed.append(EntryFailure(int(failed["Id"]), failed["Code"], failed.get("Message", "")))

    def _send_to_bus(self, chunk: list[tuple[int, str]], result: BatchResult) -> None:
        events = self._events or _client("events")
        answer = events.put_events(
            Entries=[
                {
                    "EventBusName": self._bus_name,
                    "Source": self._source,
                    "DetailType": EVENTBRIDGE_DETAIL_TYPE,
                    "Detail": body,
                }
                for _, body in chunk
            ]
        )
        for (index, _), entry in zip(chunk, answer["Entries"], strict=False):
            if entry.get("EventId"):
                result.sent[index] = entry["EventId"]
            else:
                result.failed.append(
                    EntryFailure(index, entry.get("ErrorCode", "error"), entry.get("ErrorMessage", ""))
                )


def _chunks(bodies: list[tuple[int, str]]) -> list[list[tuple[int, str]]]:
    """Calls of at most ten entries and 256 KB (each entry's other fields counted generously as 64)."""
    weights = [len(body.encode()) + 64 for _, body in bodies]
    return [[bodies[i] for i in call] for call in group_calls(weights)]


def _client(service: Literal["sqs", "events"]) -> Any:
    import boto3

    return boto3.client(service)
