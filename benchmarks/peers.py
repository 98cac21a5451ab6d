"""Peers that talk to the stand-in without the handler: a bare `requests` POST, and openai-python.

The bare POST is the unit of the latency figures: one Modify run round trip, as the stand-in answers it
in this run (its injected latency plus loopback HTTP). openai-python's `runs.update` is the same call as
most Python code would make it, to show what the handler adds on top of a plain client.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import TYPE_CHECKING, Final

import requests

from local.aws import DEFAULT_KEYS

if TYPE_CHECKING:
    import openai

PORTKEY_HEADERS: Final = {
    "x-portkey-api-key": DEFAULT_KEYS["api_key"],
    "x-portkey-virtual-key": DEFAULT_KEYS["virtual_key"],
}
_THREAD = "thread_peer"


def round_trips(base_url: str, samples: int) -> list[float]:
    """Seconds of single Modify run POSTs over one kept-alive connection (the first, untimed, opens it)."""
    session = requests.Session()
    headers = {**PORTKEY_HEADERS, "OpenAI-Beta": "assistants=v2"}

    def post(index: int) -> None:
        response = session.post(
            f"{base_url}/threads/{_THREAD}/runs/run_rt_{index}",
            json={"metadata": {"peer": "requests"}},
            headers=headers,
            timeout=10,
        )
        response.raise_for_status()

    with session:
        post(-1)
        return [_timed(partial(post, index)) for index in range(samples)]


class OpenAIPeer:
    """openai-python pointed at the stand-in as at Portkey: its base URL and Portkey's headers."""

    def __init__(self, base_url: str, *, warm_connections: int = 10) -> None:
        from openai import OpenAI

        self._client: openai.OpenAI = OpenAI(
            api_key="unused-behind-portkey",
            base_url=base_url,
            default_headers=PORTKEY_HEADERS,
            max_retries=0,  # as the handler's figures: nothing fails, nothing is retried
        )
        self._count = 0
        # Untimed: opens as many kept-alive connections as the handler's pool holds; lazy loading done.
        self.update_runs(warm_connections, threads=warm_connections)

    def update_runs(self, count: int, *, threads: int = 1) -> float:
        """Seconds to update `count` runs' metadata, one after the other or on `threads` threads."""
        first, self._count = self._count, self._count + count
        indexes = range(first, first + count)
        if threads == 1:
            return _timed(lambda: all(self._update(index) for index in indexes))
        with ThreadPoolExecutor(max_workers=threads) as pool:
            return _timed(lambda: all(pool.map(self._update, indexes)))

    def close(self) -> None:
        self._client.close()

    def _update(self, index: int) -> bool:
        with warnings.catch_warnings():
            # "The Assistants API is deprecated in favor of the Responses API": Portkey's backends serve it.
            warnings.simplefilter("ignore", DeprecationWarning)
            run = self._client.beta.threads.runs.update(
                f"run_openai_{index}", thread_id=_THREAD, metadata={"peer": "openai-python"}
            )
        if run.id != f"run_openai_{index}":
            raise RuntimeError(f"openai-python got run {run.id!r} back")
        return True


def _timed(work: Callable[[], object]) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started
