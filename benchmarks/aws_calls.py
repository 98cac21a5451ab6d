"""Counts (and times) the AWS operations the function makes, with botocore's own event system.

The function builds its clients with `boto3.client(...)`, i.e. from boto3's default session, at its first
event. A `before-call` handler registered on that session before then sees every API call of every
client built from it (botocore copies the session's handlers into each new client): one count per API
call, however many HTTP attempts botocore's own retries make of it. `after-call` tells when the answer
was parsed.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from types import TracebackType
from typing import Any, Self

import boto3


class AwsCallCounter:
    """Operation name (`PutEvents`, `GetSecretValue`, ...) → calls since the last `reset()`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()  # the function's lanes call AWS from several threads
        self._calls: Counter[str] = Counter()
        self._seconds: dict[str, list[float]] = {}
        self._session: boto3.Session | None = None

    def install(self) -> Self:
        """Register on boto3's default session (made now if there is none); call before the first event."""
        if boto3.DEFAULT_SESSION is None:
            boto3.setup_default_session()
        self._session = boto3.DEFAULT_SESSION
        if self._session is not None:
            self._session.events.register("before-call", self._count)
            self._session.events.register("after-call", self._time)
        return self

    def uninstall(self) -> None:
        if self._session is not None:
            self._session.events.unregister("before-call", self._count)
            self._session.events.unregister("after-call", self._time)
        self._session = None

    def __enter__(self) -> Self:
        return self.install()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.uninstall()

    def reset(self) -> None:
        with self._lock:
            self._calls.clear()

    def snapshot(self) -> Counter[str]:
        with self._lock:
            return Counter(self._calls)

    def take_seconds(self) -> dict[str, list[float]]:
        """Operation name → how long each call took (from sending to the parsed answer); then forget them."""
        with self._lock:
            seconds, self._seconds = self._seconds, {}
        return seconds

    def _count(self, model: Any, context: dict[str, Any], **_: Any) -> None:
        context["benchmark_started"] = time.perf_counter()  # botocore passes one context dict per call
        with self._lock:
            self._calls[str(model.name)] += 1

    def _time(self, model: Any, context: dict[str, Any], **_: Any) -> None:
        started = context.get("benchmark_started")
        if started is not None:
            with self._lock:
                self._seconds.setdefault(str(model.name), []).append(time.perf_counter() - started)


def describe(calls: Counter[str]) -> str:
    """`BatchWriteItem 1, PutEvents 1, PutItem 10`, or `none`."""
    return ", ".join(f"{name} {count}" for name, count in sorted(calls.items())) or "none"
