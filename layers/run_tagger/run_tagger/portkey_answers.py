"""What Portkey's answer says: the run it must be, or the typed error its status makes it, with
Portkey's own message and no key in it."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from run_tagger.errors import InvalidResponse, PortkeyRejected, RunNotFound, Unauthorized
from run_tagger.portkey_body import Unreadable
from run_tagger.run import Run, parse_run

# Anything that looks like a key, even a masked one ("sk-abc***xyz"), is cut from Portkey's messages.
_KEY_LIKE = re.compile(r"\b(?:sk|pk|vk|rk)-[A-Za-z0-9_*.\-]{3,}")


def read_run(
    status: int,
    raw: bytes | Unreadable,
    *,
    thread_id: str,
    run_id: str,
    metadata: Mapping[str, str],
    secrets: list[str],
) -> Run:
    """The run a Modify run answer carries, or the typed error its status or body makes it."""
    if status == 404:
        raise RunNotFound(error_message(raw, secrets), status=status)
    if status in (401, 403):
        raise Unauthorized(error_message(raw, secrets), status=status)
    if 400 <= status < 500:
        raise PortkeyRejected(error_message(raw, secrets), status=status)
    if not 200 <= status < 300:
        raise InvalidResponse(f"Portkey answered HTTP {status}, expected 200 with a run", status=status)
    if isinstance(raw, Unreadable):
        raise InvalidResponse(raw.reason, status=status)
    try:
        payload = load_json(raw)
    except ValueError:
        raise InvalidResponse("response is not JSON", status=status) from None
    from pydantic import ValidationError

    try:
        run = parse_run(payload)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'run'}: {err['msg']}"
            for err in exc.errors(include_input=False, include_url=False)[:5]
        )
        raise InvalidResponse(f"response is not a valid run: {problems}", status=status) from None
    if run.id != run_id or run.thread_id != thread_id:
        raise InvalidResponse(
            f"response is run {run.id!r} of thread {run.thread_id!r}, "
            f"not run {run_id!r} of thread {thread_id!r}",
            status=status,
        )
    # Modify run replaces the metadata; a backend that merges keeps other pairs, which is fine too.
    carried = run.metadata or {}
    if any(carried.get(key) != value for key, value in metadata.items()):
        raise InvalidResponse("response does not carry the requested metadata", status=status)
    return run


def load_json(raw: bytes) -> Any:
    """Strict JSON: NaN and Infinity, which Python's parser takes but JSON has not, are refused too."""
    return json.loads(raw, parse_constant=_refuse_constant)


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def error_message(raw: bytes | Unreadable | None, secrets: list[str]) -> str:
    """Portkey's own message (OpenAI's error shape or Portkey's gateway shape), with no key in it."""
    if isinstance(raw, Unreadable):
        return raw.reason
    message, limit = "", 1000
    if raw:
        try:
            payload = load_json(raw)
        except ValueError:
            payload = None
        if isinstance(payload, dict):
            error = payload.get("error")
            found = error.get("message") if isinstance(error, dict) else payload.get("message")
            message = found if isinstance(found, str) else ""
        if not message:  # a page, not an API error: its start is enough
            message = raw.decode("utf-8", "replace")
            limit = 300
    # Redacted whole, then cut: a cut through a key first would leave a piece no redaction matches.
    for secret in secrets:
        message = message.replace(secret, "[redacted]")
    message = _KEY_LIKE.sub("[redacted]", message).strip()
    return message[:limit] or "no message"
