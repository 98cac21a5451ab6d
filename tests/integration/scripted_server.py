"""A one-connection HTTP server that sends a scripted answer piece by piece, each after its pause: for
answers no real server sends on purpose (trickling bodies, odd splits), over a real socket."""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

type Piece = tuple[float, bytes]  # wait this many seconds, then send these bytes


def head(*lines: str) -> bytes:
    """A 200's status line and header lines, with the blank line that ends them."""
    return "\r\n".join(["HTTP/1.1 200 OK", "Content-Type: application/json", *lines, "", ""]).encode()


@contextmanager
def scripted_server(pieces: Sequence[Piece], *, tls: ssl.SSLContext | None = None) -> Iterator[str]:
    """Serves one request with `pieces`; yields the base URL (`http://127.0.0.1:PORT/v1`, or https with
    `tls`)."""
    stop = threading.Event()
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        accepted, _ = listener.accept()
        connection = tls.wrap_socket(accepted, server_side=True) if tls else accepted
        with connection:
            connection.recv(65536)
            for pause, data in pieces:
                if stop.wait(pause):
                    return
                connection.sendall(data)
            stop.wait()  # hold the connection open: the client decides when the answer is over

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"{'https' if tls else 'http'}://127.0.0.1:{listener.getsockname()[1]}/v1"
    finally:
        stop.set()
        listener.close()
        thread.join(timeout=5)
