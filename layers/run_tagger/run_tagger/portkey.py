"""The Portkey client: Modify run (DESIGN §1.2) over one pooled `requests.Session`.

Every failure leaves this module as one of run-tagger's typed errors (`errors.py`), mapped in one
place; transient ones are retried here, within the caller's deadline.
"""

from __future__ import annotations

import contextlib
import json
import math
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import quote, urlsplit

import requests
from urllib3.exceptions import InvalidHeader, MaxRetryError
from urllib3.util import Timeout
from urllib3.util.retry import Retry

from run_tagger.errors import (
    DeadlineExceeded,
    PortkeyUnavailable,
    TagRunError,
)
from run_tagger.portkey_answers import error_message, read_run
from run_tagger.portkey_body import ACCEPT_ENCODING, Unreadable, read_body
from run_tagger.portkey_watchdog import Watchdog, WatchedAdapter
from run_tagger.run import Run

RETRYABLE_STATUSES: Final = frozenset({408, 409, 429, *range(500, 600)})
# An attempt is not started with less time than this left: it could not finish.
MIN_ATTEMPT_SECONDS: Final = 0.5
BACKOFF_BASE_SECONDS: Final = 0.5
BACKOFF_CAP_SECONDS: Final = 8.0
# One thread per process ends the attempts of every client that outlast their time.
SHARED_WATCHDOG: Final = Watchdog()


@dataclass(frozen=True, slots=True)
class _Answer:
    """Portkey's answer, read whole, decoded: `Unreadable` when too large or not what it claims to be."""

    status: int
    headers: Mapping[str, str]
    content: bytes | Unreadable
    raw: Any  # urllib3's response, for Retry's bookkeeping


type Credentials = frozenset[tuple[str, str]]  # the key and routing headers a request is sent with


class RateGate:
    """One invocation's rate limit: when Portkey answers 429, every request sent with the same keys
    pauses together. Requests with other keys (another tenant's) are not held up by it."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._open_at: dict[Credentials, float] = {}
        self._lock = threading.Lock()

    def hold(self, credentials: Credentials, seconds: float) -> None:
        with self._lock:
            until = self._clock() + seconds
            self._open_at[credentials] = max(self._open_at.get(credentials, until), until)

    def pause(self, credentials: Credentials) -> float:
        """Seconds until requests with these keys may go again (0: now)."""
        with self._lock:
            return max(0.0, self._open_at.get(credentials, 0.0) - self._clock())

    def clear(self) -> None:
        """Forget every hold: a new invocation starts with the gate open."""
        with self._lock:
            self._open_at.clear()


def new_session(pool_size: int, base_url: str) -> requests.Session:
    """A session whose connection pool holds `pool_size` connections per host, with no hidden retries.

    For a plain-http base URL (loopback only) the environment's proxy settings are ignored: a proxy
    would receive the keys in clear text, from another host perhaps. https goes through a proxy as a
    tunnel, so keys stay encrypted and HTTPS_PROXY is honoured.
    """
    session = requests.Session()
    session.trust_env = urlsplit(base_url).scheme == "https"
    adapter = WatchedAdapter(pool_connections=2, pool_maxsize=pool_size, max_retries=0, pool_block=False)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


class PortkeyClient:
    """Calls Portkey's Modify run endpoint; the session is kept across invocations."""

    def __init__(
        self,
        session: requests.Session,
        *,
        base_url: str,
        timeout_seconds: float,
        max_attempts: int,
        max_in_flight: int | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        jitter: Callable[[float, float], float] = random.uniform,
        watchdog: Watchdog | None = None,
    ) -> None:
        self._session = session
        self._base_url = base_url.rstrip("/")
        self._timeout = timeout_seconds
        # urllib3's Retry counts attempts and parses Retry-After; we sleep ourselves, within the deadline.
        self._policy = Retry(
            total=max_attempts - 1,
            connect=None,
            read=None,
            status=None,
            other=None,
            redirect=0,
            allowed_methods=None,  # POST is not in urllib3's default list
            status_forcelist=RETRYABLE_STATUSES,
            respect_retry_after_header=True,
            raise_on_status=False,
            raise_on_redirect=False,
        )
        self._clock = clock
        self._sleep = sleep
        self._gate = RateGate(clock)
        # MAX_CONCURRENCY: requests to Portkey at once, however many threads the batch runs on.
        self._in_flight = threading.BoundedSemaphore(max_in_flight) if max_in_flight else None
        self._jitter = jitter
        self._watchdog = watchdog or SHARED_WATCHDOG

    def run_url(self, thread_id: str, run_id: str) -> str:
        return f"{self._base_url}/threads/{quote(thread_id, safe='')}/runs/{quote(run_id, safe='')}"

    def modify_run(
        self,
        thread_id: str,
        run_id: str,
        metadata: Mapping[str, str],
        *,
        headers: Mapping[str, str],
        deadline: float,
    ) -> Run:
        """Set `metadata` on the run and return the validated run Portkey answers with.

        `deadline` is a `clock()` value after which no attempt is started.
        """
        url = self.run_url(thread_id, run_id)
        request_headers = {
            **headers,
            "Content-Type": "application/json",
            "Accept": "application/json",
            "Accept-Encoding": ACCEPT_ENCODING,  # what portkey_body decodes, whatever else is installed
            "OpenAI-Beta": "assistants=v2",
        }
        body = json.dumps({"metadata": dict(metadata)}, ensure_ascii=False).encode("utf-8")
        secrets = [value.removeprefix("Bearer ") for value in headers.values() if value]
        credentials: Credentials = frozenset(headers.items())
        policy = self._policy
        while True:
            self._wait_for_gate(credentials, deadline)
            answer, failure = self._attempt(url, body, request_headers, deadline, secrets)
            if answer is not None and answer.status not in RETRYABLE_STATUSES:
                return read_run(
                    answer.status,
                    answer.content,
                    thread_id=thread_id,
                    run_id=run_id,
                    metadata=metadata,
                    secrets=secrets,
                )
            try:
                policy = policy.increment(method="POST", url=url, response=answer.raw if answer else None)
            except MaxRetryError:
                raise failure from None
            wait = self._wait_before_retry(policy, answer)
            if answer is not None and answer.status == 429:
                self._gate.hold(credentials, wait)  # all requests with these keys back off, not only this one
            if self._clock() + wait + MIN_ATTEMPT_SECONDS > deadline:
                raise failure
            self._sleep(wait)

    def start_invocation(self) -> None:
        """A 429 holds the requests of one invocation only: the next starts with the gate open."""
        self._gate.clear()

    def _wait_for_gate(self, credentials: Credentials, deadline: float) -> None:
        pause = self._gate.pause(credentials)
        if pause <= 0:
            return
        if self._clock() + pause + MIN_ATTEMPT_SECONDS > deadline:
            raise PortkeyUnavailable(
                f"Portkey is rate-limiting for {pause:.1f}s more, past the deadline", status=429
            )
        self._sleep(pause)

    def _attempt(
        self, url: str, body: bytes, headers: dict[str, str], deadline: float, secrets: list[str]
    ) -> tuple[_Answer | None, TagRunError]:
        """One POST, read whole, within the deadline: the answer, and the error that ends the request
        if no retry follows. Raises `DeadlineExceeded` when there is no time left to start it."""
        slot = self._take_slot(deadline)
        try:
            remaining = deadline - self._clock()
            if remaining < MIN_ATTEMPT_SECONDS:
                raise DeadlineExceeded(f"{remaining:.1f}s left before the deadline: Modify run not started")
            timeout = min(self._timeout, remaining)
            stop_at = self._clock() + timeout  # the whole attempt: connecting, the headers, the body
            late = PortkeyUnavailable(f"Portkey did not answer within {timeout:.1f}s")
            failure: TagRunError | None = None
            with self._watchdog.watching(timeout) as watch:
                try:
                    response = self._session.post(
                        url,
                        data=body,
                        headers=headers,
                        # total: connecting and waiting for the headers share one budget, not one each.
                        timeout=Timeout(total=timeout),  # type: ignore[arg-type]  # requests takes it; its stubs do not
                        allow_redirects=False,
                        stream=True,
                    )
                    content = read_body(response, self._clock, stop_at=stop_at, watch=watch)
                except requests.Timeout:
                    failure = late
                except requests.RequestException as exc:
                    # requests' messages name the URL and the OS error, never the headers.
                    failure = PortkeyUnavailable(f"could not reach Portkey: {type(exc).__name__}")
            # What a read cut short by the watchdog returned can look like anything: it is a timeout.
            if watch.fired:
                return None, late
            if failure is not None:
                return None, failure
        finally:
            if slot is not None:
                slot.release()
        answer = _Answer(response.status_code, response.headers, content, response.raw)
        # Only a retryable answer's failure is ever raised from here; read_run words the others itself.
        message = error_message(content, secrets) if answer.status in RETRYABLE_STATUSES else ""
        return answer, PortkeyUnavailable(
            f"Portkey answered {answer.status}: {message}", status=answer.status
        )

    def _take_slot(self, deadline: float) -> threading.BoundedSemaphore | None:
        """One of MAX_CONCURRENCY slots, waited for no longer than the deadline allows."""
        if self._in_flight is None:
            return None
        patience = deadline - self._clock() - MIN_ATTEMPT_SECONDS
        if patience <= 0 or not self._in_flight.acquire(timeout=patience):
            raise DeadlineExceeded("no Portkey slot came free before the deadline: Modify run not started")
        return self._in_flight

    def _wait_before_retry(self, policy: Retry, answer: _Answer | None) -> float:
        if answer is not None:
            retry_after_ms = answer.headers.get("retry-after-ms")
            if retry_after_ms:
                with contextlib.suppress(ValueError):
                    milliseconds = float(retry_after_ms)
                    if math.isfinite(milliseconds):  # "inf" and "nan" parse, but say nothing usable
                        return max(0.0, milliseconds / 1000.0)
            retry_after = answer.headers.get("Retry-After")
            if retry_after:
                # An unparsable header falls back to our own backoff.
                with contextlib.suppress(InvalidHeader):
                    return policy.parse_retry_after(retry_after)
        # Full jitter: anywhere between 0 and the capped exponential step.
        step = min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2 ** (len(policy.history) - 1))
        return self._jitter(0.0, step)
