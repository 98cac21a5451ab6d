"""A Portkey stand-in on loopback: Modify run and Retrieve run under `/v1`, with injectable faults.

    python -m local.portkey --host 127.0.0.1 --port 8787 [--runs FILE] [--api-key KEY ...]
                            [--latency-ms N] [--fail-rate 0.1] [--fail-status 500] [--seed N] [--gzip]

In tests:

    with PortkeyStandIn() as portkey:
        portkey.inject(Fault.error(429, headers={"Retry-After": "1"}))
        ...  # point the client at portkey.base_url, then assert on portkey.requests

Standard library only, so the stack runs wherever Python does.
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import re
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Collection, Iterable, Mapping
from types import FrameType, TracebackType
from typing import Any
from urllib.parse import unquote, urlsplit

from local.portkey_checks import ApiError, check_headers, parse_modify_run
from local.portkey_faults import Fault, FaultKind, RecordedRequest
from local.portkey_http import LoopbackHTTPServer, Reply, accepts_gzip, json_reply
from local.runs import Run, RunStore, is_well_formed_id, load_runs_file

__all__ = ["Fault", "FaultKind", "PortkeyStandIn", "RecordedRequest", "main"]

_RUN_PATH = re.compile(r"/v1/threads/([^/]+)/runs/([^/]+)")
# What a gateway cut off mid-answer looks like: JSON that stops half-way.
_MALFORMED_BODY = b'{"id": "run_abc123", "object": "thread.run", "status": "compl'


class PortkeyStandIn:
    """The stand-in server. `start()` serves on a daemon thread; `stop()` (or leaving `with`) ends it.

    Every well-formed id is an existing run, made on first sight, unless `runs` is given: then only
    those runs (and the ones `put_run` adds) exist. `api_keys=None` accepts any non-empty key.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        runs: Iterable[Mapping[str, Any]] | None = None,
        api_keys: Collection[str] | None = None,
        latency_ms: int = 0,
        fail_rate: float = 0.0,
        fail_status: int = 500,
        seed: int | None = None,
        gzip_answers: bool = False,
        log: Callable[[str], None] | None = None,
    ) -> None:
        self._address = (host, port)
        self._store = RunStore(runs)
        self._lock = threading.Lock()
        self._accepted: frozenset[str] | None = None
        self.accept_api_keys(api_keys)
        self._faults: deque[Fault] = deque()
        self._requests: list[RecordedRequest] = []
        self._connections_opened = 0
        self._rng = random.Random(seed)
        self.latency_ms = latency_ms
        self.fail_rate = fail_rate  # share of requests answered with `fail_status`, drawn from `seed`
        self.fail_status = fail_status
        # Compress every answer with gzip for a client that accepts it, as a CDN-fronted gateway does.
        self.gzip_answers = gzip_answers
        self._log = log  # None: silent, as tests want
        self._stopping = threading.Event()
        self._server: LoopbackHTTPServer | None = None

    def start(self) -> None:
        """Bind and serve on a daemon thread; clients may connect as soon as this returns."""
        if self._server is not None:
            raise RuntimeError("the stand-in is already running")
        self._stopping.clear()
        self._server = LoopbackHTTPServer(
            self._address,
            self._handle,
            on_connection=self._count_connection,
            stopping=self._stopping,
            log=self._log,
        )
        self._server.serve_in_background()

    def stop(self) -> None:
        """Stop serving, end open keep-alive connections and release the port."""
        if self._server is not None:
            self._server.close()  # also sets _stopping, waking handlers that wait out a delay
            self._server = None

    def __enter__(self) -> PortkeyStandIn:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        """`http://127.0.0.1:{port}/v1`, what PORTKEY_BASE_URL is set to."""
        if self._server is None:
            raise RuntimeError("the stand-in is not running")
        return f"http://{self._server.server_name}:{self._server.server_port}/v1"

    def put_run(self, run: Mapping[str, Any]) -> None:
        """Add or replace a run (it needs `id` and `thread_id`)."""
        self._store.put(run)

    def get_run(self, thread_id: str, run_id: str) -> Run | None:
        """The run as Retrieve run would answer it, or None when it does not exist."""
        return self._store.get(thread_id, run_id)

    def accept_api_keys(self, keys: Collection[str] | None) -> None:
        """Accept only `keys` from now on (others answer 401); None accepts any non-empty key."""
        self._accepted = None if keys is None else frozenset(keys)

    def inject(self, fault: Fault, times: int = 1) -> None:
        """Answer the next `times` requests with `fault`; queued faults are used in order."""
        if times < 1:
            raise ValueError("times must be at least 1")
        with self._lock:
            self._faults.extend([fault] * times)

    @property
    def pending_faults(self) -> int:
        """Injected faults not used yet."""
        with self._lock:
            return len(self._faults)

    @property
    def latency_ms(self) -> int:
        """Delay added before every answer."""
        return self._latency_ms

    @latency_ms.setter
    def latency_ms(self, value: int) -> None:
        if value < 0:
            raise ValueError("latency_ms must not be negative")
        self._latency_ms = value

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received so far, oldest first (a copy)."""
        with self._lock:
            return list(self._requests)

    @property
    def connections_opened(self) -> int:
        """TCP connections accepted so far: one for many requests proves keep-alive works."""
        with self._lock:
            return self._connections_opened

    @property
    def metadata_changes(self) -> list[tuple[str, str, dict[str, str]]]:
        """(thread_id, run_id, metadata) of every Modify run applied so far, in the order applied."""
        return self._store.metadata_changes()

    def clear_requests(self) -> None:
        """Forget recorded requests, metadata changes and the connection count."""
        with self._lock:
            self._requests.clear()
            self._connections_opened = 0
        self._store.forget_changes()

    def reset_state(self) -> None:
        """Back to a fresh server's behaviour (runs stay): no faults, any key, no latency, empty records.

        For a stand-in shared by many tests.
        """
        with self._lock:
            self._faults.clear()
            self.fail_rate = 0.0
        self.accept_api_keys(None)
        self.latency_ms = 0
        self.gzip_answers = False
        self.clear_requests()

    def _count_connection(self) -> None:
        with self._lock:
            self._connections_opened += 1

    def _pause(self, delay_ms: int) -> None:
        if delay_ms > 0:
            self._stopping.wait(delay_ms / 1000)

    def _next_fault(self) -> Fault | None:
        with self._lock:
            if self._faults:
                return self._faults.popleft()
            if self.fail_rate > 0 and self._rng.random() < self.fail_rate:
                return Fault.error(self.fail_status)
            return None

    def _handle(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Reply:
        started = time.monotonic()
        fault = self._next_fault()
        try:
            parsed: Any = json.loads(body) if body else None
        except ValueError:
            parsed = None
        with self._lock:
            self._requests.append(
                RecordedRequest(method, path, headers, body, parsed, fault.kind if fault else None)
            )
        self._pause(self._latency_ms)
        reply = self._apply(fault, method, path, headers, body)
        if self.gzip_answers and accepts_gzip(headers) and reply.body:
            reply.body = gzip.compress(reply.body)
            reply.headers["Content-Encoding"] = "gzip"
        if self._log is not None:  # the request line and outcome only: headers carry keys
            outcome = "reset" if reply.reset else str(reply.status)
            note = f" [fault: {fault.kind}]" if fault else ""
            self._log(f"{method} {path} -> {outcome} in {(time.monotonic() - started) * 1000:.0f} ms{note}")
        return reply

    def _apply(
        self, fault: Fault | None, method: str, path: str, headers: dict[str, str], body: bytes
    ) -> Reply:
        if fault is None:
            return self._serve(method, path, headers, body)
        match fault.kind:
            case FaultKind.RESET:
                return Reply(0, reset=True)
            case FaultKind.ERROR:
                error = ApiError.for_status(fault.status, fault.headers)
                return json_reply(fault.status, fault.body or error.body, error.headers)
            case FaultKind.MALFORMED_BODY:
                return Reply(fault.status, _MALFORMED_BODY)
            case FaultKind.LATENCY:
                self._pause(fault.delay_ms)
                return self._serve(method, path, headers, body)
            case FaultKind.SLOW_BODY:
                reply = self._serve(method, path, headers, body)
                reply.slow_ms = fault.delay_ms
                return reply
            case FaultKind.WRONG_RUN:
                reply = self._serve(method, path, headers, body)
                if reply.status == 200:
                    run = json.loads(reply.body)
                    reply.body = json.dumps({**run, "id": f"{run['id']}_other"}).encode()
                return reply

    def _serve(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Reply:
        route = urlsplit(path).path
        try:
            match = _RUN_PATH.fullmatch(route)
            if match is None:
                raise ApiError(404, f"Invalid URL ({method} {route})")
            if method not in {"GET", "POST"}:
                raise ApiError(
                    405, f"Invalid method for URL ({method} {route})", headers={"Allow": "GET, POST"}
                )
            check_headers(headers, self._accepted)
            thread_id, run_id = unquote(match[1]), unquote(match[2])
            if not is_well_formed_id(thread_id):
                raise ApiError(404, f"No thread found with id '{thread_id}'.")
            if not is_well_formed_id(run_id):
                raise ApiError(404, f"No run found with id '{run_id}'.")
            metadata = parse_modify_run(headers, body) if method == "POST" else None
            if metadata is None:
                run = self._store.get(thread_id, run_id)
            else:
                run = self._store.replace_metadata(thread_id, run_id, metadata)
            if run is None:
                raise ApiError(404, f"No run found with id '{run_id}'.")
        except ApiError as error:
            return json_reply(error.status, error.body, error.headers)
        return json_reply(200, run)


def main(argv: list[str] | None = None) -> int:
    """Run the stand-in until Ctrl-C or SIGTERM; print its base URL on one line."""
    parser = argparse.ArgumentParser(prog="python -m local.portkey", description="A Portkey stand-in.")
    add = parser.add_argument
    add("--host", default="127.0.0.1", help="address to bind (default: %(default)s)")
    add("--port", type=int, default=8787, help="0 picks a free port (default: %(default)s)")
    add("--runs", metavar="FILE", help="JSON array of run objects: only these runs exist")
    add(
        "--api-key", dest="api_keys", action="append", metavar="KEY", help="accept only this key (repeatable)"
    )
    add("--latency-ms", type=int, default=0, help="delay before every answer")
    add("--fail-rate", type=float, default=0.0, help="share of requests that fail, 0 to 1")
    add("--fail-status", type=int, default=500, help="status of those failures (default: %(default)s)")
    add("--seed", type=int, help="seed for --fail-rate, to replay a run")
    add("--gzip", action="store_true", help="gzip every answer for a client that accepts it")
    args = parser.parse_args(argv)
    if not 0.0 <= args.fail_rate <= 1.0:
        parser.error("--fail-rate must be between 0 and 1")
    if args.latency_ms < 0:
        parser.error("--latency-ms must not be negative")
    try:
        # The runs are checked as the stand-in takes them in, not as the file is read.
        standin = PortkeyStandIn(
            args.host,
            args.port,
            runs=load_runs_file(args.runs) if args.runs else None,
            api_keys=args.api_keys,
            latency_ms=args.latency_ms,
            fail_rate=args.fail_rate,
            fail_status=args.fail_status,
            seed=args.seed,
            gzip_answers=args.gzip,
            log=lambda line: print(line, file=sys.stderr, flush=True),
        )
    except (OSError, ValueError) as error:
        parser.error(f"--runs: {error}")
    try:
        standin.start()
    except OSError as error:
        parser.error(f"cannot listen on {args.host}:{args.port}: {error.strerror or error}")
    signal.signal(signal.SIGTERM, _interrupt)  # stop as cleanly on SIGTERM as on Ctrl-C
    try:  # from here on a signal always ends in stop()
        print(standin.base_url, flush=True)
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        standin.stop()
    return 0


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    sys.exit(main())
