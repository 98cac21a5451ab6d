"""What the Portkey stand-in checks before it serves a run, and the OpenAI-shaped errors it answers.

The messages follow the ones OpenAI and Portkey send, so run-tagger's handling of a refusal is tested
against text it will meet in production. No message ever echoes a header value: they carry keys.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

ROUTING_HEADERS = ("x-portkey-virtual-key", "x-portkey-provider", "x-portkey-config")
MAX_METADATA_PAIRS = 16
MAX_METADATA_KEY_CHARS = 64
MAX_METADATA_VALUE_CHARS = 512
# Modify run takes nothing but metadata; anything else is a caller's mistake worth a 400.
MODIFY_RUN_FIELDS = frozenset({"metadata"})

_BETA_MESSAGE = (
    "You must provide the 'OpenAI-Beta' header to access the Assistants API. "
    "Please try again by setting the header 'OpenAI-Beta: assistants=v2'."
)
_V1_MESSAGE = (
    "The v1 Assistants API has been deprecated. "
    "Please try again by setting the header 'OpenAI-Beta: assistants=v2'."
)

# What an injected or random failure says when the test gives no body of its own.
_DEFAULT_ERRORS: dict[int, tuple[str, str | None, str]] = {
    401: ("invalid_request_error", "invalid_api_key", "Invalid API key provided."),
    403: ("invalid_request_error", "forbidden", "You are not allowed to access this resource."),
    408: ("timeout", None, "Request timed out."),
    409: ("invalid_request_error", "conflict", "The run is being modified by another request."),
    429: ("requests", "rate_limit_exceeded", "Rate limit reached for requests. Please try again shortly."),
    500: ("server_error", None, "The server had an error while processing your request. Sorry about that!"),
    502: ("server_error", None, "Bad gateway."),
    503: ("server_error", None, "The engine is currently overloaded, please try again later."),
    504: ("server_error", None, "Gateway timeout."),
}


def error_body(
    message: str, *, type_: str = "invalid_request_error", param: str | None = None, code: str | None = None
) -> dict[str, Any]:
    """The OpenAI error shape: `{"error": {"message", "type", "param", "code"}}`."""
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


class ApiError(Exception):
    """A refusal, answered with `status` and an OpenAI-shaped body."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type_: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body = error_body(message, type_=type_, param=param, code=code)
        self.headers = dict(headers or {})

    @classmethod
    def for_status(cls, status: int, headers: Mapping[str, str] | None = None) -> ApiError:
        """A realistic error for any status, for faults that do not say what to answer."""
        type_, code, message = _DEFAULT_ERRORS.get(
            status, ("invalid_request_error" if status < 500 else "server_error", None, _phrase(status))
        )
        return cls(status, message, type_=type_, code=code, headers=headers)


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase + "."
    except ValueError:
        return f"HTTP {status}."


def check_headers(headers: Mapping[str, str], accepted_keys: frozenset[str] | None) -> None:
    """Portkey's own checks, then OpenAI's beta header; `headers` has lower-case names."""
    api_key = headers.get("x-portkey-api-key", "").strip()
    if not api_key:
        raise ApiError(
            401,
            "Missing API key. Provide your Portkey API key in the x-portkey-api-key header.",
            code="invalid_api_key",
        )
    if accepted_keys is not None and api_key not in accepted_keys:
        raise ApiError(
            401, "Invalid API key provided in the x-portkey-api-key header.", code="invalid_api_key"
        )
    if not any(headers.get(name, "").strip() for name in ROUTING_HEADERS):
        raise ApiError(
            400, "Either x-portkey-config, x-portkey-provider or x-portkey-virtual-key header is required."
        )
    betas = {token.strip() for token in headers.get("openai-beta", "").split(",")}
    if "assistants=v2" not in betas:
        message = _V1_MESSAGE if "assistants=v1" in betas else _BETA_MESSAGE
        raise ApiError(400, message, code="invalid_beta")


def parse_modify_run(headers: Mapping[str, str], body: bytes) -> dict[str, str] | None:
    """The metadata a Modify run request sets, or None when it leaves the metadata alone."""
    media_type = headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "application/json":
        raise ApiError(
            400,
            f"Invalid Content-Type header ({media_type or 'none'}), expected application/json.",
            code="invalid_content_type",
        )
    try:
        payload = json.loads(body)
    except ValueError:
        raise ApiError(
            400,
            "We could not parse the JSON body of your request. (HINT: This likely means you aren't using "
            "your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was "
            "not valid JSON.)",
        ) from None
    if not isinstance(payload, dict):
        raise ApiError(
            400, f"Invalid type for body: expected an object, but got {_json_type(payload)} instead."
        )
    for field in payload:
        if field not in MODIFY_RUN_FIELDS:
            raise ApiError(400, f"Unrecognized request argument supplied: {field}", param=field)
    return check_metadata(payload.get("metadata"))


def check_metadata(metadata: object) -> dict[str, str] | None:
    """The Assistants API limits: at most 16 pairs, keys 1-64 chars, string values up to 512 chars."""
    if metadata is None:
        return None
    if not isinstance(metadata, dict):
        raise ApiError(
            400,
            f"Invalid type for 'metadata': expected an object, but got {_json_type(metadata)} instead.",
            param="metadata",
            code="invalid_type",
        )
    if len(metadata) > MAX_METADATA_PAIRS:
        raise ApiError(
            400,
            f"Invalid 'metadata': too many properties. Expected an object with at most {MAX_METADATA_PAIRS} "
            f"properties, but got an object with {len(metadata)} properties instead.",
            param="metadata",
            code="object_above_max_properties",
        )
    for key, value in metadata.items():
        if not 1 <= len(key) <= MAX_METADATA_KEY_CHARS:
            raise ApiError(
                400,
                f"Invalid 'metadata': keys must be 1 to {MAX_METADATA_KEY_CHARS} characters long, "
                f"but got a key of {len(key)} characters instead.",
                param="metadata",
                code="invalid_metadata_key",
            )
        if not isinstance(value, str):
            raise ApiError(
                400,
                f"Invalid type for 'metadata.{key}': expected a string, but got {_json_type(value)} instead.",
                param=f"metadata.{key}",
                code="invalid_type",
            )
        if len(value) > MAX_METADATA_VALUE_CHARS:
            raise ApiError(
                400,
                f"Invalid 'metadata.{key}': string too long. Expected a string with maximum length "
                f"{MAX_METADATA_VALUE_CHARS}, but got a string with length {len(value)} instead.",
                param=f"metadata.{key}",
                code="string_above_max_length",
            )
    return metadata


def _json_type(value: object) -> str:
    names: list[tuple[type, str]] = [
        (bool, "a boolean"),
        (int, "an integer"),
        (float, "a decimal"),
        (str, "a string"),
        (list, "an array"),
        (dict, "an object"),
    ]
    return next((name for kind, name in names if isinstance(value, kind)), "null")
