"""The Portkey client's tests' fakes: a clock that moves only when the client sleeps, predictable jitter,
and the one run every test asks for. The fixtures built from them are in `tests/unit/conftest.py`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
import requests
from run_tagger.errors import TagRunError
from run_tagger.portkey import PortkeyClient

from tests.support import a_run

BASE_URL = "https://gateway.test/v1"
THREAD_ID = "thread_abc123"
RUN_ID = "run_abc123"
RUN_URL = f"{BASE_URL}/threads/{THREAD_ID}/runs/{RUN_ID}"
API_KEY = "pk-secret-123"
KEY_HEADERS = {"x-portkey-api-key": API_KEY, "x-portkey-virtual-key": "vk-openai-prod"}
METADATA = {"team": "search", "ticket": "T-1"}
FAR = 1_000.0


def valid_run(**changes: object) -> dict[str, Any]:
    """A run object for the run these tests ask for, carrying the requested metadata."""
    return a_run(**{"id": RUN_ID, "thread_id": THREAD_ID, "metadata": dict(METADATA), **changes})


def openai_error(message: str) -> dict[str, object]:
    return {"error": {"message": message, "type": "invalid_request_error", "param": None, "code": None}}


@dataclass
class FakeTime:
    """A monotonic clock that only moves when the client sleeps."""

    now: float = 0.0
    sleeps: list[float] = field(default_factory=list)

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@dataclass
class FakeJitter:
    """Records the bounds it is asked for and answers with the upper one, so waits are predictable."""

    bounds: list[tuple[float, float]] = field(default_factory=list)

    def __call__(self, low: float, high: float) -> float:
        self.bounds.append((low, high))
        return high


def new_client(
    fake_time: FakeTime, jitter: FakeJitter | None = None, *, max_attempts: int = 3, timeout: float = 10.0
) -> PortkeyClient:
    return PortkeyClient(
        requests.Session(),
        base_url=BASE_URL,
        timeout_seconds=timeout,
        max_attempts=max_attempts,
        clock=fake_time.clock,
        sleep=fake_time.sleep,
        jitter=jitter or FakeJitter(),
    )


def modify(
    client: PortkeyClient,
    *,
    headers: dict[str, str] | None = None,
    deadline: float = FAR,
    metadata: dict[str, str] | None = None,
) -> dict[str, object]:
    run = client.modify_run(
        THREAD_ID,
        RUN_ID,
        METADATA if metadata is None else metadata,
        headers=KEY_HEADERS if headers is None else headers,
        deadline=deadline,
    )
    return run.to_json_dict()


def failure(client: PortkeyClient, **kwargs: Any) -> TagRunError:
    with pytest.raises(TagRunError) as caught:
        modify(client, **kwargs)
    return caught.value
