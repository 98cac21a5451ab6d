"""The HTTP/1.1 plumbing under the Portkey stand-in: keep-alive, connection counting, resets, slow bodies.

Kept apart from what the stand-in answers (local/portkey.py) so each module does one job.
"""

from __future__ import annotations

import contextlib
import json
import socket
import struct
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from socketserver import TCPServer
from typing import Any

from local.portkey_checks import ApiError


@dataclass(slots=True)
class Reply:
    """What to answer: a status with a JSON body, or a reset; `slow_ms` stalls the body half-way."""

    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    reset: bool = False
    slow_ms: int = 0


def json_reply(status: int, payload: Mapping[str, Any], headers: Mapping[str, str] | None = None) -> Reply:
    return Reply(status, json.dumps(payload).encode(), dict(headers or {}))


def accepts_gzip(headers: Mapping[str, str]) -> bool:
    """Whether Accept-Encoding lists gzip with a non-zero weight (`gzip;q=0` refuses it)."""
    for coding in headers.get("accept-encoding", "").split(","):
        name, *params = coding.split(";")
        if name.strip().lower() != "gzip":
            continue
        weight = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    weight = float(value)
                except ValueError:
                    weight = 0.0
        return weight > 0
    return False


# (method, path as sent, headers with lower-case names, body) -> the answer
type RequestHandler = Callable[[str, str, dict[str, str], bytes], Reply]


class LoopbackHTTPServer(ThreadingHTTPServer):
    """A threading HTTP/1.1 server that counts connections and can close them all when stopped."""

    daemon_threads = True

    def __init__(
        self,
        address: tuple[str, int],
        respond: RequestHandler,
        *,
        on_connection: Callable[[], None],
        stopping: threading.Event,
        log: Callable[[str], None] | None = None,
    ) -> None:
        self.respond = respond
        self.on_connection = on_connection
        self.stopping = stopping  # set by stop(): wakes handlers stalling a slow body
        self.log = log
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves the host's FQDN, a DNS lookup that can stall offline.
        TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)

    def serve_in_background(self) -> None:
        """Serve on a daemon thread; the socket already listens, so clients may connect at once."""
        # A short poll interval keeps close() quick: serve_forever checks for shutdown only that often.
        self._thread = threading.Thread(
            target=self.serve_forever, kwargs={"poll_interval": 0.05}, name="portkey-stand-in", daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        """Stop accepting, end open keep-alive connections, wait for the handlers, release the port."""
        self.stopping.set()
        self.shutdown()
        with self._open_lock:
            open_sockets = list(self._open)
        for sock in open_sockets:  # idle keep-alive handlers would otherwise block server_close
            with contextlib.suppress(OSError):  # already closed by its handler
                sock.shutdown(socket.SHUT_RDWR)
        self.server_close()
        if self._thread is not None:
            self._thread.join()

    def process_request(
        self, request: socket.socket | tuple[bytes, socket.socket], client_address: Any
    ) -> None:
        # Counted and tracked here, in the accepting thread, so close() sees every connection.
        if isinstance(request, socket.socket):
            self.on_connection()
            with self._open_lock:
                self._open.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: socket.socket | tuple[bytes, socket.socket]) -> None:
        if isinstance(request, socket.socket):
            with self._open_lock:
                self._open.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exception(), OSError):
            return  # the client went away (its timeout, a reset): not a bug of ours
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, so a requests.Session reuses its connection
    disable_nagle_algorithm = True  # headers and body go out in two writes; don't wait for an ACK
    server: LoopbackHTTPServer

    def do_GET(self) -> None:
        self._respond()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def _respond(self) -> None:
        body = self._read_body()
        if body is None:
            return
        headers: dict[str, str] = {}
        for name, value in self.headers.items():
            key = name.lower()
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        self._send(self.server.respond(self.command, self.path, headers, body))

    def _read_body(self) -> bytes | None:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self._refuse(411, "A Content-Length header is required.")
            return None
        try:
            length = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            length = -1
        if length < 0:
            self._refuse(400, "Invalid Content-Length header.")
            return None
        body = self.rfile.read(length)
        if len(body) < length:  # the client hung up mid-body
            self.close_connection = True
            return None
        return body

    def _refuse(self, status: int, message: str) -> None:
        # The body's end is unknown, so the connection cannot carry another request.
        self.close_connection = True
        self._send(json_reply(status, ApiError(status, message).body, {"Connection": "close"}))

    def _send(self, reply: Reply) -> None:
        if reply.reset:
            # Linger 0 makes close() send RST: the client sees "connection reset by peer".
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True
            self.rfile.close()  # drops the socket's last file reference, so close() really closes
            self.connection.close()
            return
        self.send_response(reply.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply.body)))
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.send_header("x-request-id", f"req_{time.time_ns():x}{threading.get_ident() % 65536:04x}")
        self.end_headers()
        if reply.slow_ms:
            half = len(reply.body) // 2
            self.wfile.write(reply.body[:half])
            self.server.stopping.wait(reply.slow_ms / 1000)
            self.wfile.write(reply.body[half:])
        else:
            self.wfile.write(reply.body)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass  # the stand-in logs one line per request itself, without headers

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.log is not None:
            self.server.log(format % args)
