"""The tag-run request (DESIGN §1.1), the envelopes it arrives in, and its de-duplication key."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Annotated, Any, Literal, TypeGuard

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from run_tagger.errors import InvalidRequest

# Ids go into the URL path: nothing but these characters is let through (no '/', '..', '%2F', spaces).
ID_PATTERN = r"^[A-Za-z0-9_-]{1,128}$"
TENANT_PATTERN = r"^[a-z0-9-]{1,64}$"
MAX_METADATA_PAIRS = 16
MAX_BODY_BYTES = 1_048_576  # SQS's own limit: a larger body cannot be a message we sent

ResourceId = Annotated[str, StringConstraints(pattern=ID_PATTERN)]
MetadataKey = Annotated[str, StringConstraints(min_length=1, max_length=64)]
MetadataValue = Annotated[str, StringConstraints(max_length=512)]
Metadata = Annotated[dict[MetadataKey, MetadataValue], Field(max_length=MAX_METADATA_PAIRS)]

EVENTBRIDGE_DETAIL_TYPE = "Tag Run Requested"
Envelope = Literal["sqs", "eventbridge", "sns"]


class TagRunRequest(BaseModel):
    """Set `metadata` on run `run_id` of thread `thread_id`."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    thread_id: ResourceId
    run_id: ResourceId
    metadata: Metadata
    request_id: Annotated[str, StringConstraints(min_length=1, max_length=128)] | None = None
    tenant: Annotated[str, StringConstraints(pattern=TENANT_PATTERN)] | None = None

    def to_detail(self) -> dict[str, object]:
        """The request as events show it: optional fields that were not given appear as null."""
        return self.model_dump(mode="json")


@dataclass(frozen=True, slots=True)
class ParsedMessage:
    """A valid request with where it came from and the key that identifies it across deliveries."""

    request: TagRunRequest
    envelope: Envelope
    dedup_key: str

    @property
    def scoped_key(self) -> str:
        """The de-duplication key scoped by tenant, so tenants never share a record."""
        return f"{self.request.tenant or ''}:{self.dedup_key}"

    @property
    def run_key(self) -> tuple[str, str]:
        """Requests with the same run key are applied in arrival order."""
        return (self.request.thread_id, self.request.run_id)


def parse_message(body: str, message_id: str) -> ParsedMessage:
    """Unwrap and validate an SQS message body; every refusal is an `InvalidRequest` naming the problem."""
    payload = _decode(body, "message body")
    envelope: Envelope = "sqs"
    envelope_id = message_id
    if _is_sns(payload):
        envelope, envelope_id = "sns", _string_field(payload, "MessageId", "SNS notification")
        payload = _decode(_string_field(payload, "Message", "SNS notification"), "SNS Message")
    if _is_eventbridge(payload):
        envelope, envelope_id = "eventbridge", _string_field(payload, "id", "EventBridge event")
        detail_type = payload.get("detail-type")
        if detail_type != EVENTBRIDGE_DETAIL_TYPE:
            expected = EVENTBRIDGE_DETAIL_TYPE
            raise InvalidRequest(
                f"detail-type: must be {expected!r} for an EventBridge event, got {detail_type!r}"
            )
        payload = payload["detail"]
    request = validate_request(payload)
    return ParsedMessage(request, envelope, request.request_id or envelope_id)


def validate_request(payload: object) -> TagRunRequest:
    """Validate a decoded request; the error message names each field and the rule it breaks."""
    if not isinstance(payload, dict):
        raise InvalidRequest(f"request: must be a JSON object, got {_json_type(payload)}")
    try:
        return TagRunRequest.model_validate(payload)
    except ValidationError as exc:
        raise InvalidRequest("; ".join(_explain(err) for err in exc.errors())) from None


def _decode(text: str, what: str) -> object:
    if len(text.encode("utf-8", "surrogatepass")) > MAX_BODY_BYTES:
        raise InvalidRequest(f"{what}: larger than {MAX_BODY_BYTES} bytes")
    try:
        return json.loads(text, parse_constant=_refuse_constant)
    except (ValueError, RecursionError) as exc:
        reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        raise InvalidRequest(f"{what}: not valid JSON ({reason})") from None


def _refuse_constant(name: str) -> object:
    raise ValueError(f"{name} is not JSON")


def _is_sns(payload: object) -> TypeGuard[dict[str, Any]]:
    return isinstance(payload, dict) and payload.get("Type") == "Notification" and "Message" in payload


def _is_eventbridge(payload: object) -> TypeGuard[dict[str, Any]]:
    return isinstance(payload, dict) and "detail-type" in payload and "detail" in payload


def _string_field(payload: object, name: str, what: str) -> str:
    value = payload.get(name) if isinstance(payload, dict) else None
    if not isinstance(value, str) or not value:
        raise InvalidRequest(f"{name}: required string field of the {what} is missing")
    return value


def _json_type(value: object) -> str:
    names = {
        dict: "an object",
        list: "an array",
        str: "a string",
        bool: "a boolean",
        int: "a number",
        float: "a number",
    }
    return "null" if value is None else names.get(type(value), type(value).__name__)


_ALLOWED_FIELDS = ", ".join(TagRunRequest.model_fields)
_RULES = {
    "string_pattern_mismatch": {
        "thread_id": "must be 1-128 characters of A-Z, a-z, 0-9, '_' or '-' (it goes into a URL path)",
        "run_id": "must be 1-128 characters of A-Z, a-z, 0-9, '_' or '-' (it goes into a URL path)",
        "tenant": "must be 1-64 characters of a-z, 0-9 or '-'",
    },
}


def _explain(err: object) -> str:
    assert isinstance(err, dict)
    loc = [str(part) for part in err.get("loc", ())]
    kind = str(err.get("type", ""))
    field = loc[0] if loc else "request"
    path = ".".join(loc) or "request"
    if kind == "extra_forbidden":
        return f"{path}: unknown field (allowed: {_ALLOWED_FIELDS})"
    if kind == "missing":
        return f"{path}: required field is missing"
    if kind in _RULES and field in _RULES[kind]:
        return f"{path}: {_RULES[kind][field]}"
    if field == "metadata" and kind == "too_long" and len(loc) == 1:
        given = err.get("input")
        count = f", got {len(given)}" if isinstance(given, dict) else ""
        return f"metadata: at most {MAX_METADATA_PAIRS} pairs allowed{count}"
    if field == "metadata" and len(loc) == 3 and loc[2] == "[key]":
        key = loc[1] if len(loc[1]) <= 24 else loc[1][:24] + "..."
        return f"metadata key {key!r}: must be 1-64 characters"
    if field == "metadata" and len(loc) == 2 and kind in ("too_long", "string_too_long"):
        return f"metadata.{loc[1]}: value must be at most 512 characters"
    if field == "metadata" and len(loc) == 2 and kind == "string_type":
        return f"metadata.{loc[1]}: value must be a string, got {_json_type(err.get('input'))}"
    return f"{path}: {err.get('msg', 'invalid')}"
