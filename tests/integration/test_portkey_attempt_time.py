"""An attempt's time is one budget over a real socket: connecting, waiting for the headers and reading
a body that trickles in all count against PORTKEY_TIMEOUT_SECONDS, not each on its own."""

from __future__ import annotations

import gzip
import socket
import threading
import time
from collections.abc import Iterator

import pytest
from run_tagger.errors import PortkeyUnavailable
from run_tagger.portkey import PortkeyClient, new_session

HEADERS = {"x-portkey-api-key": "pk-test", "x-portkey-virtual-key": "vk-test"}
BUDGET_SECONDS = 1.0


@pytest.fixture
def trickling_server(request: pytest.FixtureRequest) -> Iterator[str]:
    """Sends the headers after `request.param[0]` seconds, then one byte of its body per
    `request.param[1]` seconds (a gzip body when `request.param[2]`): no single wait reaches a read
    timeout of the whole budget."""
    headers_after, byte_every, gzipped = request.param
    body = gzip.compress(b'{"id": "run_a", "object": "thread.run"}' * 20) if gzipped else b" " * 100
    encoding = b"Content-Encoding: gzip\r\n" if gzipped else b""
    stop = threading.Event()
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        connection, _ = listener.accept()
        with connection:
            connection.recv(65536)
            if stop.wait(headers_after):
                return
            head = f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            connection.sendall(head.encode() + encoding + b"\r\n")
            for byte in body:
                if stop.wait(byte_every):
                    return
                connection.sendall(bytes([byte]))

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}/v1"
    stop.set()
    listener.close()
    thread.join(timeout=5)


@pytest.mark.timeout(20)
@pytest.mark.parametrize(
    "trickling_server",
    [(0.6, 0.6, False), (0.0, 0.95, False), (0.0, 0.3, True)],
    ids=["headers-late-then-a-byte-each-0.6s", "a-byte-each-0.95s", "gzip-a-byte-each-0.3s"],
    indirect=True,
)
def test_an_answer_that_trickles_in_ends_when_the_attempts_budget_does(trickling_server: str) -> None:
    # Given a client allowed 1 s per attempt, and an answer that never lets a single read wait 1 s
    client = PortkeyClient(
        new_session(1, trickling_server),
        base_url=trickling_server,
        timeout_seconds=BUDGET_SECONDS,
        max_attempts=1,
    )
    started = time.monotonic()
    # When a run is modified
    with pytest.raises(PortkeyUnavailable, match=r"did not answer within 1\.0s"):
        client.modify_run("thread_a", "run_a", {"k": "v"}, headers=HEADERS, deadline=started + 60)
    # Then the attempt ended at its budget, not a read timeout or a byte later (1.8 s and 1.9 s before)
    assert time.monotonic() - started < BUDGET_SECONDS + 0.4
