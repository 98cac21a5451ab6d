"""An attempt's time is one budget over a real socket: waiting for the headers and reading a body that
trickles in count against PORTKEY_TIMEOUT_SECONDS together, not each read on its own."""

from __future__ import annotations

import gzip
import socket
import time
from pathlib import Path
from typing import Any

import pytest
import requests
from run_tagger.errors import PortkeyUnavailable
from run_tagger.portkey import PortkeyClient, new_session

from tests.integration.scripted_server import Piece, head, scripted_server
from tests.integration.self_signed import self_signed

HEADERS = {"x-portkey-api-key": "pk-test", "x-portkey-virtual-key": "vk-test"}
BUDGET_SECONDS = 1.0
GZIPPED = gzip.compress(b'{"id": "run_a", "object": "thread.run"}' * 20)

# Each waits less than the budget between pieces, so no single read of the socket times out.
TRICKLES: dict[str, list[Piece]] = {
    "headers-late-then-a-byte-each-0.6s": [(0.6, head("Content-Length: 100"))] + [(0.6, b" ")] * 100,
    "a-byte-each-0.95s": [(0.0, head("Content-Length: 100"))] + [(0.95, b" ")] * 100,
    "gzip-a-byte-each-0.3s": [(0.0, head(f"Content-Length: {len(GZIPPED)}", "Content-Encoding: gzip"))]
    + [(0.3, bytes([byte])) for byte in GZIPPED],
    "chunked-size-line-a-digit-each-0.3s": [(0.0, head("Transfer-Encoding: chunked"))] + [(0.3, b"0")] * 60,
    "chunked-trailers-a-line-each-0.3s": [(0.0, head("Transfer-Encoding: chunked") + b"1\r\n \r\n0\r\n")]
    + [(0.3, b"X-Trailer: x\r\n")] * 60,
    "status-line-a-byte-each-0.3s": [(0.3, bytes([byte])) for byte in head("Content-Length: 0")],
    # With Connection: close, http.client takes the socket away from the connection once the headers are in.
    "connection-close-a-byte-each-0.95s": [(0.0, head("Content-Length: 100", "Connection: close"))]
    + [(0.95, b" ")] * 100,
    "connection-close-chunked-size-line-a-digit-each-0.3s": [
        (0.0, head("Transfer-Encoding: chunked", "Connection: close"))
    ]
    + [(0.3, b"0")] * 60,
    "header-lines-a-line-each-0.3s": [(0.0, b"HTTP/1.1 200 OK\r\n")] + [(0.3, b"X-Slow: x\r\n")] * 60,
}


def modify_run_ends_at_the_budget(base_url: str, session: requests.Session | None = None) -> None:
    """Modify a run with 1 s per attempt and one attempt: it fails as a timeout, at the budget."""
    client = PortkeyClient(
        session or new_session(1, base_url), base_url=base_url, timeout_seconds=BUDGET_SECONDS, max_attempts=1
    )
    started = time.monotonic()
    with pytest.raises(PortkeyUnavailable, match=r"did not answer within 1\.0s"):
        client.modify_run("thread_a", "run_a", {"k": "v"}, headers=HEADERS, deadline=started + 60)
    assert time.monotonic() - started < BUDGET_SECONDS + 0.4


@pytest.mark.timeout(20)
@pytest.mark.parametrize("name", sorted(TRICKLES))
def test_an_answer_that_trickles_in_ends_when_the_attempts_budget_does(name: str) -> None:
    with scripted_server(TRICKLES[name]) as base_url:
        # Given an answer that never lets a single read wait the attempt's 1 s
        # When a run is modified, then the attempt ends at its budget, not a read timeout later
        modify_run_ends_at_the_budget(base_url)


@pytest.mark.timeout(20)
@pytest.mark.parametrize("name", ["chunked-size-line-a-digit-each-0.3s", "header-lines-a-line-each-0.3s"])
def test_an_answer_over_tls_that_trickles_in_ends_when_the_attempts_budget_does(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given Portkey over https, and an answer whose headers or chunk sizes come a piece every 0.3 s
    for variable in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):  # requests prefers them to the session's own
        monkeypatch.delenv(variable, raising=False)
    tls, certificate = self_signed(tmp_path)
    with scripted_server(TRICKLES[name], tls=tls) as base_url:
        session = new_session(1, base_url)
        session.verify = str(certificate)
        # When a run is modified, then the attempt ends at its budget as a timeout, like over plain http
        modify_run_ends_at_the_budget(base_url, session)


@pytest.mark.timeout(20)
def test_a_slow_name_lookup_and_a_stalled_tls_handshake_share_the_attempts_budget(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a name lookup that takes 0.5 s, and an https server that never answers the TLS handshake
    lookup = socket.getaddrinfo

    def slow_lookup(*args: Any, **kwargs: Any) -> Any:
        time.sleep(0.5)  # the delay under test: what a slow resolver costs
        return lookup(*args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", slow_lookup)
    with socket.create_server(("127.0.0.1", 0)) as silent:
        base_url = f"https://127.0.0.1:{silent.getsockname()[1]}/v1"
        # When a run is modified, then the attempt ends at its budget: the handshake gets only what is left
        modify_run_ends_at_the_budget(base_url)


@pytest.mark.timeout(20)
def test_a_slow_proxy_tunnel_and_a_stalled_tls_handshake_share_the_attempts_budget(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given Portkey on https behind the environment's proxy, which opens the tunnel after 0.9 s, and an
    # origin that then never answers the TLS handshake
    pieces = [(0.9, b"HTTP/1.1 200 Connection established\r\n\r\n")]
    with scripted_server(pieces) as proxy_url:
        monkeypatch.setenv("HTTPS_PROXY", proxy_url.removesuffix("/v1"))
        for variable in ("NO_PROXY", "no_proxy", "https_proxy"):
            monkeypatch.delenv(variable, raising=False)
        base_url = "https://portkey.example/v1"
        # When a run is modified, then the handshake gets what the tunnel left: the attempt ends at its budget
        modify_run_ends_at_the_budget(base_url)


@pytest.mark.timeout(20)
def test_an_https_proxy_that_trickles_its_answer_to_connect_ends_when_the_attempts_budget_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given Portkey on https behind an https proxy, which answers CONNECT a header line every 0.3 s
    for variable in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "NO_PROXY", "no_proxy", "https_proxy"):
        monkeypatch.delenv(variable, raising=False)
    tls, certificate = self_signed(tmp_path)
    pieces = [(0.0, b"HTTP/1.1 200 Connection established\r\n")] + [(0.3, b"X-Slow: x\r\n")] * 60
    with scripted_server(pieces, tls=tls) as proxy_url:
        monkeypatch.setenv("HTTPS_PROXY", proxy_url.removesuffix("/v1"))
        base_url = "https://portkey.example/v1"
        session = new_session(1, base_url)
        session.verify = str(certificate)
        # When a run is modified, then the tunnel's set-up, inside the proxy's TLS, ends at the budget
        modify_run_ends_at_the_budget(base_url, session)
