"""A watch shuts only its own attempt's connection: once the connection is back in the pool, another
attempt may use it, and the first attempt's deadline no longer touches it."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
import requests
from run_tagger.portkey import new_session
from run_tagger.portkey_body import read_body
from run_tagger.portkey_watchdog import Watch, Watchdog

ANSWER = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"


def _read_request(connection: socket.socket) -> None:
    """One whole request: its head, then as many body bytes as it announces (TCP may split them)."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += connection.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        (
            int(line.split(b":", 1)[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        ),
        0,
    )
    while len(body) < length:
        body += connection.recv(65536)


class KeepAliveServer:
    """One connection, two requests: the first answered at once, the second when `answer_second` is set."""

    def __init__(self) -> None:
        self.second_received = threading.Event()
        self.answer_second = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}/v1/threads/t/runs/r"
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        connection, _ = self._listener.accept()
        with connection:
            _read_request(connection)
            connection.sendall(ANSWER)
            _read_request(connection)
            self.second_received.set()
            self.answer_second.wait(10)
            connection.sendall(ANSWER)

    @contextmanager
    def running(self) -> Iterator[KeepAliveServer]:
        self._thread.start()
        try:
            yield self
        finally:
            self.answer_second.set()
            self._listener.close()
            self._thread.join(timeout=5)


def read_by_requests(session: requests.Session, url: str, watch: Watch) -> bytes:
    return session.post(url, data=b"{}", timeout=10).content


def read_by_the_client(session: requests.Session, url: str, watch: Watch) -> bytes:
    """As the Portkey client reads an answer: streamed, its socket handed to the watch by read_body."""
    response = session.post(url, data=b"{}", timeout=10, stream=True)
    body = read_body(response, time.monotonic, stop_at=time.monotonic() + 10, watch=watch)
    assert isinstance(body, bytes)
    return body


@pytest.mark.timeout(20)
@pytest.mark.parametrize("read", [read_by_requests, read_by_the_client], ids=lambda read: read.__name__)
def test_a_deadline_that_comes_after_the_connection_went_back_to_the_pool_spares_its_next_user(
    read: Callable[[requests.Session, str, Watch], bytes],
) -> None:
    watchdog = Watchdog()
    session = new_session(1, "http://127.0.0.1")
    outcome: dict[str, object] = {}
    with KeepAliveServer().running() as server, watchdog.watching(60) as first:
        # Given an attempt that has read its whole answer (its connection is back in the pool) but whose
        # watch is still open
        assert read(session, server.url, first) == b"{}"

        def second_attempt() -> None:
            with watchdog.watching(60):
                try:
                    outcome["status"] = session.post(server.url, data=b"{}", timeout=10).status_code
                except Exception as error:
                    outcome["status"] = repr(error)

        # And another attempt now waiting for its answer on that same connection
        other = threading.Thread(target=second_attempt)
        other.start()
        assert server.second_received.wait(10)
        # When the first attempt's deadline comes
        first.fire()
        server.answer_second.set()
        other.join(10)
    # Then the other attempt gets its answer, and the first still learns it ran out of time
    assert outcome["status"] == 200
    assert first.fired
