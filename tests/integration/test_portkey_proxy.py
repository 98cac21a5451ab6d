"""Keys never go through a proxy in clear text: a plain-http (loopback) base URL ignores HTTP_PROXY."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest
from run_tagger.portkey import PortkeyClient, new_session

from local.portkey import PortkeyStandIn

HEADERS = {"x-portkey-api-key": "pk-test-proxy", "x-portkey-virtual-key": "vk-test"}


@pytest.fixture
def proxy(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[bytes]]:
    """A listener the environment names as the HTTP proxy; it records what reaches it and hangs up."""
    received: list[bytes] = []
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.1)
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except TimeoutError:
                continue
            with connection:
                received.append(connection.recv(65536))

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{listener.getsockname()[1]}"
    for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.setenv(name, url)
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    yield received
    stop.set()
    thread.join(timeout=5)
    listener.close()


def test_a_loopback_http_portkey_is_called_directly_whatever_proxy_the_environment_names(
    portkey: PortkeyStandIn, proxy: list[bytes]
) -> None:
    # Given an environment whose HTTP_PROXY points elsewhere, and a stand-in on plain http
    client = PortkeyClient(
        new_session(1, portkey.base_url), base_url=portkey.base_url, timeout_seconds=5, max_attempts=1
    )
    # When a run is modified
    run = client.modify_run("thread_a", "run_a", {"k": "v"}, headers=HEADERS, deadline=time.monotonic() + 30)
    # Then the stand-in got the request, and the proxy nothing
    assert run.metadata == {"k": "v"}
    assert len(portkey.requests) == 1
    assert proxy == []
