"""Reading the body of Portkey's answer: within the attempt's time, at most MAX_RESPONSE_BYTES once
decoded, and decoded here, as it arrives, from gzip or deflate (the encodings the client asks for)."""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import requests
import urllib3
from urllib3 import exceptions as urllib3_errors

if TYPE_CHECKING:
    from run_tagger.portkey_watchdog import Watch

MAX_RESPONSE_BYTES: Final = 4 * 1024 * 1024
ACCEPT_ENCODING: Final = "gzip, deflate"
_READ_BYTES = 65536
_PLAIN = frozenset({"", "identity"})
_GZIP = 16 + zlib.MAX_WBITS
_WBITS = {"gzip": _GZIP, "x-gzip": _GZIP, "deflate": zlib.MAX_WBITS}
_LATE = "Portkey's answer did not arrive in time"


@dataclass(frozen=True, slots=True)
class Unreadable:
    """A body that cannot be taken as the answer: why, in words fit for an error message."""

    reason: str


def read_body(
    response: requests.Response, clock: Callable[[], float], *, stop_at: float, watch: Watch | None = None
) -> bytes | Unreadable:
    """The whole body, decoded; `Unreadable` when it is larger than MAX_RESPONSE_BYTES decoded (read no
    further than that) or is not the encoding it claims.

    Every read of the socket waits only for what is left until `stop_at`, so a body that trickles in is a
    timeout at `stop_at`. That is why decoding happens here and not in urllib3: its decoding read keeps
    reading until the decoder has output, each read with the time left when it began. One read of a
    chunked body may read the socket several times (a chunk's size line, the trailers): the attempt's
    `watch` ends those at `stop_at`, and is handed the socket here in case it did not know it yet.
    """
    coding = response.headers.get("Content-Encoding", "").strip().lower()
    if coding not in _PLAIN and coding not in _WBITS:
        response.close()
        return Unreadable(f"response encoded as {coding!r}, which was not asked for")
    sock = _socket_of(response)
    if watch is not None and sock is not None:
        watch.attach_socket(sock, response.raw.connection)
    try:
        return _read(response, sock, _Inflater(coding) if coding in _WBITS else None, clock, stop_at)
    except zlib.error:
        return Unreadable(f"response is not valid {coding}")
    except urllib3_errors.ReadTimeoutError:
        raise requests.Timeout(_LATE) from None
    except urllib3_errors.HTTPError as exc:
        raise requests.ConnectionError(f"Portkey's answer broke off: {type(exc).__name__}") from None
    finally:
        response.close()


def _read(
    response: requests.Response,
    sock: Any,
    inflater: _Inflater | None,
    clock: Callable[[], float],
    stop_at: float,
) -> bytes | Unreadable:
    chunks: list[bytes] = []
    size = 0
    while True:
        left = stop_at - clock()
        if left <= 0:
            raise requests.Timeout(_LATE)
        # Once the body is in, urllib3 gives the connection back to the pool: its socket is not ours to set.
        if sock is not None and response.raw.connection is not None:
            sock.settimeout(left)  # was the rest of the attempt's budget when the headers came
        raw = response.raw.read1(_READ_BYTES, decode_content=False)
        if inflater is None:
            data = raw
        else:
            data = inflater.feed(raw, MAX_RESPONSE_BYTES - size) if raw else inflater.finish()
        size += len(data)
        if size > MAX_RESPONSE_BYTES:
            return Unreadable(f"response larger than {MAX_RESPONSE_BYTES} bytes")
        chunks.append(data)
        if not raw:
            return b"".join(chunks)


def _socket_of(response: requests.Response) -> Any:
    """The answer's socket: a socket, or urllib3's TLS-in-TLS transport through an https proxy (which has
    `settimeout` too); None when there is none to reach (an in-memory response in tests)."""
    connection = response.raw.connection if isinstance(response.raw, urllib3.HTTPResponse) else None
    sock = getattr(connection, "sock", None)
    return sock if callable(getattr(sock, "settimeout", None)) else None


class _Inflater:
    """gzip or deflate, decoded chunk by chunk, never more than the room left for the body (+1 byte, so
    that going past it shows). HTTP's deflate is the zlib format, but some servers send raw deflate: the
    first two bytes tell which. Bytes after the end of the data are ignored, as other clients do."""

    def __init__(self, coding: str) -> None:
        self._wbits = _WBITS[coding]
        self._decoder = zlib.decompressobj(self._wbits)
        self._head = b""  # a deflate body's first bytes, until there are two to tell the format by
        self._undecided = self._wbits == zlib.MAX_WBITS
        self._fed = False
        self._ended = False

    def feed(self, data: bytes, room: int) -> bytes:
        self._fed = True
        if self._undecided:
            self._head += data
            if len(self._head) < 2:
                return b""
            data, self._head, self._undecided = self._head, b"", False
            try:
                return self._decode(data, room)
            except zlib.error:
                self._wbits = -zlib.MAX_WBITS
                self._decoder = zlib.decompressobj(self._wbits)
        return self._decode(data, room)

    def finish(self) -> bytes:
        if not self._fed:
            return b""  # no body at all: nothing was encoded
        out = self._decode(self._head, 0) if self._undecided else b""
        out += self._decoder.flush()
        if not self._decoder.eof:
            raise zlib.error("the body ended before its compressed stream did")
        return out

    def _decode(self, data: bytes, room: int) -> bytes:
        if self._ended:
            return b""
        out = self._decoder.decompress(data, room + 1)
        # gzip allows several members one after another: each ends the decoder, the next starts anew.
        while self._decoder.eof and self._decoder.unused_data and len(out) <= room:
            rest = self._decoder.unused_data
            if self._wbits != _GZIP or rest[:2] != b"\x1f\x8b":
                self._ended = True  # trailing bytes, not another member
                break
            self._decoder = zlib.decompressobj(self._wbits)
            out += self._decoder.decompress(rest, room + 1 - len(out))
        return out
