"""Ends a Portkey attempt at its deadline, whatever it is waiting for.

urllib3 applies a read timeout to each read of the socket, so an answer that trickles in (its status
line, its headers or its body a byte at a time) could hold an attempt far past PORTKEY_TIMEOUT_SECONDS.
Here one thread watches every attempt in flight, and at an attempt's deadline shuts its connection's
socket down: the blocked read fails at once, and the attempt knows the watchdog was the cause.

The connection an attempt uses is learnt as urllib3 connects or sends on it (`WatchedAdapter`'s
connection classes), so the wait for the headers is covered, not only the body.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import math
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

from requests.adapters import HTTPAdapter
from urllib3 import HTTPConnectionPool, HTTPSConnectionPool, PoolManager, ProxyManager
from urllib3.connection import HTTPConnection, HTTPSConnection

_current = threading.local()  # the Watch of the attempt this thread is making, if any


class Watch:
    """One attempt's watch: the connection it uses, once known, and whether its deadline came first."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sockets: list[Any] = []
        self._connection: HTTPConnection | None = None
        self._done = False
        self.fired = False

    def attach(self, connection: HTTPConnection) -> None:
        """The attempt uses this connection; shut it at once if the deadline has already passed."""
        with self._lock:
            self._connection = connection
            if self.fired:
                _shut(connection.sock)

    def attach_socket(self, sock: Any) -> None:
        """The answer's socket, when it did not come through a watched connection (any session)."""
        with self._lock:
            self._sockets.append(sock)
            if self.fired:
                _shut(sock)

    def finish(self) -> bool:
        """The attempt is over, either way: the watch will not fire now. Whether it did."""
        with self._lock:
            self._done = True
            return self.fired

    def fire(self) -> None:
        with self._lock:
            if self._done:
                return
            self.fired = True
            if self._connection is not None:
                _shut(self._connection.sock)
            for sock in self._sockets:
                _shut(sock)


def _shut(sock: Any) -> None:
    """Shut a socket down under the thread reading it; the read fails at once."""
    sock = getattr(sock, "socket", sock)  # under urllib3's TLS-in-TLS transport, the socket itself
    with contextlib.suppress(OSError, AttributeError):  # closed already, or not connected yet
        if isinstance(sock, socket.socket):
            # The plain socket's own shutdown, also under TLS: SSLSocket.shutdown would drop its TLS
            # state under the reading thread, which would then fail with a ValueError.
            socket.socket.shutdown(sock, socket.SHUT_RDWR)
        elif sock is not None:
            sock.shutdown(socket.SHUT_RDWR)


class Watchdog:
    """One daemon thread firing the watches whose deadline has come; started at the first watch."""

    def __init__(self) -> None:
        self._due: list[tuple[float, int, Watch]] = []
        self._order = itertools.count()  # ties on the deadline never compare two watches
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None

    @contextlib.contextmanager
    def watching(self, seconds: float) -> Iterator[Watch]:
        """A watch firing in `seconds`, known to this thread's connections until the block ends."""
        watch = Watch()
        due = time.monotonic() + max(0.0, seconds)
        with self._wake:
            earliest = self._due[0][0] if self._due else math.inf
            heapq.heappush(self._due, (due, next(self._order), watch))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="portkey-watchdog", daemon=True)
                self._thread.start()
            elif due < earliest:
                self._wake.notify()
        _current.watch = watch
        try:
            yield watch
        finally:
            _current.watch = None
            watch.finish()

    def _run(self) -> None:
        with self._wake:
            while True:
                now = time.monotonic()
                while self._due and self._due[0][0] <= now:
                    heapq.heappop(self._due)[2].fire()  # a finished watch ignores it
                self._wake.wait(self._due[0][0] - now if self._due else None)


def _watched(connection: HTTPConnection) -> None:
    watch: Watch | None = getattr(_current, "watch", None)
    if watch is not None:
        watch.attach(connection)


class _WatchedHTTPConnection(HTTPConnection):
    def connect(self) -> None:
        _watched(self)
        super().connect()

    def request(self, *args: Any, **kwargs: Any) -> None:
        _watched(self)  # a pooled connection is reused without connecting again
        super().request(*args, **kwargs)


class _WatchedHTTPSConnection(HTTPSConnection):
    def connect(self) -> None:
        _watched(self)
        super().connect()

    def request(self, *args: Any, **kwargs: Any) -> None:
        _watched(self)
        super().request(*args, **kwargs)


class _WatchedHTTPConnectionPool(HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _WatchedHTTPSConnectionPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


def _watch_pools(manager: Any) -> None:
    # Only urllib3's own managers: a SOCKS manager's pools have connection classes of their own.
    if type(manager) in (PoolManager, ProxyManager):
        manager.pool_classes_by_scheme = {
            "http": _WatchedHTTPConnectionPool,
            "https": _WatchedHTTPSConnectionPool,
        }


class WatchedAdapter(HTTPAdapter):
    """requests' adapter, its connections known to the watch of the attempt that uses them."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        _watch_pools(self.poolmanager)

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        _watch_pools(manager)
        return manager
