"""Ends a Portkey attempt at its deadline, whatever it is waiting for.

urllib3 applies a read timeout to each read of the socket, so an answer that trickles in (its status
line, its headers or its body a byte at a time) could hold an attempt far past PORTKEY_TIMEOUT_SECONDS.
Here one thread watches every attempt in flight, and at an attempt's deadline shuts its connection's
socket down: the blocked read fails at once, and the attempt knows the watchdog was the cause.

The sockets an attempt uses are learnt as urllib3 connects or sends (`WatchedAdapter`'s connection
classes), so the TLS handshake, the wait for the headers and an answer sent with `Connection: close`
(whose socket http.client takes away from the connection) are covered, not only the body. A watch shuts
a connection's sockets only while its attempt holds it: back in the pool, it may be another attempt's.
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
from urllib3.exceptions import ConnectTimeoutError

_current = threading.local()  # the Watch of the attempt this thread is making, if any
# Who may shut a pooled connection's socket: the watch of the attempt using it now, no other. Taken to
# hand a connection over (to an attempt, back to the pool) and to fire, so a watch never shuts the socket
# of a connection that went back to the pool and is now another attempt's.
_owners = threading.Lock()


class Watch:
    """One attempt's watch: the sockets it reads from, and whether its deadline came first."""

    def __init__(self, due: float) -> None:
        self.due = due  # time.monotonic()
        self._watched: list[tuple[_Watched | None, Any]] = []  # (its connection, a socket)
        self._done = False
        self.fired = False

    def seconds_left(self) -> float:
        return self.due - time.monotonic()

    def attach(self, connection: _Watched, sock: Any) -> None:
        """The attempt uses this connection, now over `sock`; shut at once if the deadline has passed."""
        with _owners:
            connection.owner = self
            self._attach(connection, sock)

    def attach_socket(self, sock: Any, connection: object = None) -> None:
        """The answer's socket and the connection it came through: one of ours is attached as its own
        (so a watch never shuts it once back in the pool); any other session's socket, as it is."""
        if isinstance(connection, _Watched):
            self.attach(connection, sock)
            return
        with _owners:
            self._attach(None, sock)

    def finish(self) -> bool:
        """The attempt is over, either way: the watch will not fire now. Whether it did."""
        with _owners:
            self._done = True
            self._watched.clear()
            return self.fired

    def fire(self) -> None:
        with _owners:
            if self._done:
                return
            self.fired = True
            for connection, sock in self._watched:
                if connection is None or connection.owner is self:
                    _shut(sock)

    def _attach(self, connection: _Watched | None, sock: Any) -> None:
        if sock is None or self._done:
            return
        self._watched.append((connection, sock))
        if self.fired:
            _shut(sock)


def _released(connection: object) -> None:
    if isinstance(connection, _Watched):
        with _owners:
            connection.owner = None


def _shut(sock: Any) -> None:
    """Shut a socket down under the thread reading it; the read fails at once."""
    sock = getattr(sock, "socket", sock)  # under urllib3's TLS-in-TLS transport, the socket itself
    with contextlib.suppress(OSError, AttributeError):  # closed already, or handed to its TLS wrapper
        if isinstance(sock, socket.socket):
            # The plain socket's own shutdown, also under TLS: SSLSocket.shutdown would drop its TLS
            # state under the reading thread, which would then fail with a ValueError.
            socket.socket.shutdown(sock, socket.SHUT_RDWR)
        else:
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
        due = time.monotonic() + max(0.0, seconds)
        watch = Watch(due)
        with self._wake:
            earliest = self._due[0][0] if self._due else math.inf
            heapq.heappush(self._due, (due, next(self._order), watch))
            if self._thread is None:
                thread = threading.Thread(target=self._run, name="portkey-watchdog", daemon=True)
                thread.start()  # kept only once running: a thread that failed to start is tried again
                self._thread = thread
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


def _watch() -> Watch | None:
    watch: Watch | None = getattr(_current, "watch", None)
    return watch


class _Watched(HTTPConnection):
    """What both watched connection classes add: every socket they use is known to the attempt's watch.

    A socket is attached as soon as it is connected (before any TLS handshake, which the connection
    waits out no longer than the attempt has left), when the connection is connected (under TLS, the
    wrapped socket), and at each request on a reused connection; an answer with `Connection: close`
    takes the socket away from the connection, but the watch keeps it.
    """

    owner: Watch | None = None  # the watch allowed to shut its sockets: its attempt's, while it runs

    def _time_left(self, watch: Watch, where: str) -> float:
        """The attempt's time left, or a connect timeout when there is none."""
        left = watch.seconds_left()
        if left <= 0:
            raise ConnectTimeoutError(self, f"the attempt's time ran out {where}")
        return left

    def _new_conn(self) -> socket.socket:
        watch = _watch()
        if watch is not None:
            left = self._time_left(watch, "before connecting")
            if not isinstance(self.timeout, int | float) or self.timeout > left:
                self.timeout = left  # connecting ends with the attempt
        sock = super()._new_conn()
        if watch is not None:
            # The name lookup took its time too: a TLS handshake next gets only what is left.
            try:
                sock.settimeout(self._time_left(watch, "while connecting"))
            except ConnectTimeoutError:
                sock.close()
                raise
            watch.attach(self, sock)
        return sock

    def connect(self) -> None:
        super().connect()
        watch = _watch()
        if watch is not None:
            watch.attach(self, self.sock)

    def _tunnel(self) -> None:
        """Through a proxy: the CONNECT exchange, and the TLS handshake after it, are the attempt's too."""
        watch = _watch()
        if watch is not None:
            watch.attach(self, self.sock)  # to an https proxy, the TLS socket the proxy answers on
        super()._tunnel()
        if watch is not None:
            self.sock.settimeout(self._time_left(watch, "in the proxy's tunnel"))

    def request(self, *args: Any, **kwargs: Any) -> None:
        watch = _watch()
        if watch is not None and self.sock is not None:  # reused: connected by an earlier attempt
            watch.attach(self, self.sock)
        super().request(*args, **kwargs)


class _WatchedHTTPConnection(_Watched):
    pass


class _WatchedHTTPSConnection(_Watched, HTTPSConnection):
    pass


class _Releasing(HTTPConnectionPool):
    """What both watched pools add: a connection back in the pool is no attempt's to shut."""

    def _put_conn(self, conn: Any) -> None:
        _released(conn)
        super()._put_conn(conn)


class _WatchedHTTPConnectionPool(_Releasing):
    ConnectionCls = _WatchedHTTPConnection


class _WatchedHTTPSConnectionPool(_Releasing, HTTPSConnectionPool):
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
