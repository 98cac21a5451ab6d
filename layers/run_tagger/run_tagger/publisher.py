"""Publishing `Run Tagged` and `Run Tag Failed` events to EventBridge (DESIGN §1.4)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from run_tagger.errors import InvalidResponse, PublishFailed, TagRunError
from run_tagger.request import TagRunRequest
from run_tagger.run import Run

if TYPE_CHECKING:
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_events.type_defs import PutEventsRequestEntryTypeDef

RUN_TAGGED: Final = "Run Tagged"
RUN_TAG_FAILED: Final = "Run Tag Failed"
MAX_ENTRIES_PER_CALL: Final = 10  # EventBridge's PutEvents limits: entries per call,
MAX_REQUEST_BYTES: Final = 262144  # and the total size of a call's entries


@dataclass(frozen=True, slots=True)
class Event:
    """One event to publish: its detail-type and detail object."""

    detail_type: str
    detail: dict[str, Any]
    detail_json: str = field(default="", compare=False)


def entry_size(source: str, detail_type: str, detail_json: str) -> int:
    """An entry's size as EventBridge counts it (UTF-8 bytes of source, detail-type and detail)."""
    return len(source.encode()) + len(detail_type.encode()) + len(detail_json.encode())


def group_calls(
    weights: Sequence[int], *, max_entries: int = MAX_ENTRIES_PER_CALL, max_bytes: int = MAX_REQUEST_BYTES
) -> list[list[int]]:
    """Indexes of entries of these sizes, grouped in order into calls of at most `max_entries`
    entries and `max_bytes` bytes (the limits PutEvents and SendMessageBatch share)."""
    calls: list[list[int]] = []
    size = 0
    for index, weight in enumerate(weights):
        if not calls or len(calls[-1]) == max_entries or size + weight > max_bytes:
            calls.append([])
            size = 0
        calls[-1].append(index)
        size += weight
    return calls


def _dumps(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


class EventBuilder:
    """Builds the events of §1.4, truncating a run that would not fit into `max_bytes`."""

    def __init__(self, *, source: str, max_bytes: int) -> None:
        self._source = source
        self._max_bytes = max_bytes

    def run_tagged(self, run: dict[str, Any], request: TagRunRequest) -> Event:
        detail: dict[str, Any] = {"run": run, "request": request.to_detail(), "truncated": []}
        detail_json = _dumps(detail)
        if self._fits(RUN_TAGGED, detail_json):
            return Event(RUN_TAGGED, detail, detail_json)
        slim = json.loads(detail_json)  # a private copy to cut down
        for path, cut in _truncations(slim["run"]):
            cut()
            slim["truncated"].append(path)
            detail_json = _dumps(slim)
            if self._fits(RUN_TAGGED, detail_json):
                return Event(RUN_TAGGED, slim, detail_json)
        # Nothing left to cut but the metadata, which the event exists to carry.
        raise InvalidResponse(
            f"the run was tagged, but its event does not fit EVENT_MAX_BYTES ({self._max_bytes}) "
            "even truncated"
        )

    def run_tag_failed(self, request: TagRunRequest | None, error: TagRunError, message_id: str) -> Event:
        detail: dict[str, Any] = {
            "request": request.to_detail() if request else None,
            "error": error.to_detail(),
            "message_id": message_id,
        }
        detail_json = _dumps(detail)
        if not self._fits(RUN_TAG_FAILED, detail_json):
            detail["error"]["message"] = detail["error"]["message"][:1000]
            detail_json = _dumps(detail)
        if not self._fits(RUN_TAG_FAILED, detail_json) and detail["request"] is not None:
            # Only a request's metadata can still make it this large; the original body stays in the DLQ.
            detail["request"]["metadata"] = {}
            detail_json = _dumps(detail)
        overflow = entry_size(self._source, RUN_TAG_FAILED, detail_json) - self._max_bytes
        if overflow > 0:
            # What is left is a request of a few hundred bytes at most: the message gives way, by bytes
            # (characters are up to four), never cut inside a character.
            message = detail["error"]["message"].encode()
            detail["error"]["message"] = message[: max(0, len(message) - overflow)].decode(errors="ignore")
            detail_json = _dumps(detail)
        return Event(RUN_TAG_FAILED, detail, detail_json)

    def _fits(self, detail_type: str, detail_json: str) -> bool:
        return entry_size(self._source, detail_type, detail_json) <= self._max_bytes


def _truncations(run: dict[str, Any]) -> list[tuple[str, Callable[[], None]]]:
    """The cuts, in order: instructions first, then the tools' definitions, then what is left that is big."""
    cuts: list[tuple[str, Callable[[], None]]] = []
    if run.get("instructions"):
        cuts.append(("run.instructions", lambda: run.__setitem__("instructions", None)))
    for index, tool in enumerate(run.get("tools") or []):
        function = tool.get("function") if isinstance(tool, dict) else None
        for name in ("description", "parameters"):
            if isinstance(function, dict) and name in function:
                cuts.append((f"run.tools[{index}].function.{name}", _pop(function, name)))
    response_format = run.get("response_format")
    schema_holder = response_format.get("json_schema") if isinstance(response_format, dict) else None
    if isinstance(schema_holder, dict) and "schema" in schema_holder:
        cuts.append(("run.response_format.json_schema.schema", _pop(schema_holder, "schema")))
    # Then whatever else can be large: the arguments of pending tool calls, the last error's message,
    # and fields the schema does not know (largest first); each is emptied or left out, and named.
    action = run.get("required_action")
    calls = (action.get("submit_tool_outputs") or {}).get("tool_calls") if isinstance(action, dict) else None
    for index, call in enumerate(calls if isinstance(calls, list) else []):
        function = call.get("function") if isinstance(call, dict) else None
        if isinstance(function, dict) and function.get("arguments"):
            path = f"run.required_action.submit_tool_outputs.tool_calls[{index}].function.arguments"
            cuts.append((path, _set(function, "arguments", "")))
    last_error = run.get("last_error")
    if isinstance(last_error, dict) and last_error.get("message"):
        cuts.append(("run.last_error.message", _set(last_error, "message", "")))
    unknown = sorted(
        (name for name in run if name not in Run.model_fields), key=lambda n: -len(_dumps(run[n]))
    )
    cuts.extend((f"run.{name}", _pop(run, name)) for name in unknown)
    return cuts


def _set(holder: dict[str, Any], name: str, value: object) -> Callable[[], None]:
    return lambda: holder.__setitem__(name, value)


def _pop(holder: dict[str, Any], name: str) -> Callable[[], None]:
    return lambda: holder.pop(name, None) and None


class EventPublisher:
    """PutEvents in calls of at most 10 entries; failed entries are retried alone, then reported."""

    def __init__(
        self,
        client: EventBridgeClient,
        *,
        bus_name: str,
        source: str,
        entry_attempts: int = 3,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._client = client
        self._bus_name = bus_name
        self._source = source
        self._entry_attempts = entry_attempts
        self._sleep = sleep

    def publish(self, events: Sequence[Event]) -> list[PublishFailed | None]:
        """Publish `events`; the result holds, per event, None when published or why it was not."""
        outcomes: list[PublishFailed | None] = [None] * len(events)
        for chunk in self._calls(events):
            for index, failure in zip(chunk, self._put(chunk, events), strict=True):
                outcomes[index] = failure
        return outcomes

    def _calls(self, events: Sequence[Event]) -> list[list[int]]:
        """Event indexes grouped into PutEvents calls: at most 10 entries and 256 KB each."""
        entries = [self._entry(event) for event in events]
        weights = [entry_size(e["Source"], e["DetailType"], e["Detail"]) for e in entries]
        return group_calls(weights)

    def _put(self, indexes: list[int], events: Sequence[Event]) -> list[PublishFailed | None]:
        from botocore.exceptions import BotoCoreError, ClientError

        outcomes: dict[int, PublishFailed | None] = {}
        pending = indexes
        for attempt in range(1, self._entry_attempts + 1):
            entries = [self._entry(events[i]) for i in pending]
            try:
                answer = self._client.put_events(Entries=entries)
            except (ClientError, BotoCoreError) as exc:
                # botocore already retried throttling and 5xx; the whole call failed.
                failure = PublishFailed(f"PutEvents failed: {_aws_error(exc)}")
                outcomes.update(dict.fromkeys(pending, failure))
                break
            retry: list[int] = []
            for index, result in zip(pending, answer["Entries"], strict=False):
                if result.get("EventId"):
                    outcomes[index] = None
                else:
                    outcomes[index] = PublishFailed(
                        f"PutEvents entry failed: {result.get('ErrorCode', 'unknown')} "
                        f"{result.get('ErrorMessage', '')}".strip()
                    )
                    retry.append(index)
            if not retry:
                break
            pending = retry
            if attempt < self._entry_attempts:
                self._sleep(0.1 * 2**attempt)
        return [outcomes.get(i, PublishFailed("PutEvents returned no result")) for i in indexes]

    def _entry(self, event: Event) -> PutEventsRequestEntryTypeDef:
        return {
            "Source": self._source,
            "DetailType": event.detail_type,
            "Detail": event.detail_json or _dumps(event.detail),
            "EventBusName": self._bus_name,
        }


def _aws_error(exc: Exception) -> str:
    from botocore.exceptions import ClientError

    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return f"{error.get('Code', 'error')}: {error.get('Message', '')}".strip()
    return type(exc).__name__
