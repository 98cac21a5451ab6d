"""Faults the Portkey stand-in can be told to answer with, and the record it keeps of each request."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class FaultKind(StrEnum):
    """How a faulty answer goes wrong."""

    ERROR = "error"  # an HTTP error status with an OpenAI-shaped body and optional headers
    LATENCY = "latency"  # the normal answer, late
    MALFORMED_BODY = "malformed_body"  # a 200 whose body is truncated JSON
    WRONG_RUN = "wrong_run"  # a valid run object, but not the one asked for (other id)
    RESET = "reset"  # the connection is reset without an answer
    SLOW_BODY = "slow_body"  # the normal answer, its body stalling half-way


@dataclass(frozen=True, slots=True)
class Fault:
    """One faulty answer; build it with the class methods, e.g. `Fault.error(429, headers=...)`."""

    kind: FaultKind
    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)
    body: Mapping[str, Any] | None = None
    delay_ms: int = 0

    def __post_init__(self) -> None:
        if self.delay_ms < 0:
            raise ValueError("delay_ms must not be negative")

    @classmethod
    def error(
        cls, status: int, *, headers: Mapping[str, str] | None = None, body: Mapping[str, Any] | None = None
    ) -> Fault:
        """Answer `status`, e.g. 429 with `{"Retry-After": "2"}` or `{"retry-after-ms": "250"}`.

        Without `body`, a realistic OpenAI-shaped error for the status is sent.
        """
        return cls(FaultKind.ERROR, status, dict(headers or {}), body)

    @classmethod
    def latency(cls, delay_ms: int) -> Fault:
        """Answer normally, `delay_ms` later."""
        return cls(FaultKind.LATENCY, delay_ms=delay_ms)

    @classmethod
    def malformed_body(cls, status: int = 200) -> Fault:
        """Answer `status` with `Content-Type: application/json` and a body that is not JSON."""
        return cls(FaultKind.MALFORMED_BODY, status)

    @classmethod
    def wrong_run(cls) -> Fault:
        """Apply the request, then answer with the run under another id."""
        return cls(FaultKind.WRONG_RUN)

    @classmethod
    def reset(cls) -> Fault:
        """Reset the connection (TCP RST) without answering; the request is not applied."""
        return cls(FaultKind.RESET)

    @classmethod
    def slow_body(cls, delay_ms: int) -> Fault:
        """Send the headers and half the body, stall `delay_ms`, then send the rest."""
        return cls(FaultKind.SLOW_BODY, delay_ms=delay_ms)


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """A request as the stand-in received it.

    `headers` has lower-case names. It carries keys, so it is left out of `repr` and must never be
    printed or logged; assert on single values instead.
    """

    method: str
    path: str  # as sent, with any query string
    headers: Mapping[str, str] = field(repr=False)
    body: bytes = field(repr=False)
    json: Any  # the parsed body; None when there is none or it is not JSON
    fault: FaultKind | None  # the fault this request was answered with, if any
