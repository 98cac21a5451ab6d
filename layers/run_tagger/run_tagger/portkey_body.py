"""Reading the body of Portkey's answer: within the attempt's time, at most MAX_RESPONSE_BYTES once
decoded, and decoded here, as it arrives, from gzip or deflate (the encodings the client asks for)."""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

import requests
import urllib3
from urllib3 import exceptions as urllib3_errors

MAX_RESPONSE_BYTES: Final = 4 * 1024 * 1024
ACCEPT_ENCODING: Final = "gzip, deflate"
_READ_BYTES = 65536
_PLAIN = frozenset({"", "identity"})
_WBITS = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}


@dataclass(frozen=True, slots=True)
class Unreadable:
    """A body that cannot be taken as the answer: why, in words fit for an error message."""

    reason: str


def read_body(
    response: requests.Response, clock: Callable[[], float], *, stop_at: float
) -> bytes | Unreadable:
    """The whole body, decoded; `Unreadable` when it is larger than MAX_RESPONSE_BYTES decoded (read no
    further than that) or is not the encoding it claims.

    Every read of the socket waits only for what is left until `stop_at`, so a body that trickles in is a
    timeout at `stop_at`. That is why decoding happens here and not in urllib3: its decoding read keeps
    reading until the decoder has output, each read with the time left when it began.
    """
    coding = response.headers.get("Content-Encoding", "").strip().lower()
    try:
        if coding not in _PLAIN and coding not in _WBITS:
            return Unreadable(f"response encoded as {coding!r}, which was not asked for")
        inflater = _Inflater(coding) if coding in _WBITS else None
        chunks: list[bytes] = []
        size = 0
        while True:
            left = stop_at - clock()
            if left <= 0:
                raise requests.Timeout("Portkey's answer did not arrive in time")
            _wait_at_most(response, left)
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
    except zlib.error:
        return Unreadable(f"response is not valid {coding}")
    except urllib3_errors.ReadTimeoutError:
        raise requests.Timeout("Portkey's answer did not arrive in time") from None
    except urllib3_errors.HTTPError as exc:
        raise requests.ConnectionError(f"Portkey's answer broke off: {type(exc).__name__}") from None
    finally:
        response.close()


class _Inflater:
    """gzip or deflate, decoded chunk by chunk, never more than the room left for the body (+1 byte, so
    that going past it shows). HTTP's deflate is the zlib format, but some servers send raw deflate."""

    def __init__(self, coding: str) -> None:
        self._wbits = _WBITS[coding]
        self._decoder = zlib.decompressobj(self._wbits)
        self._first = True

    def feed(self, data: bytes, room: int) -> bytes:
        if self._first and self._wbits == zlib.MAX_WBITS:
            try:
                return self._decode(data, room)
            except zlib.error:
                self._wbits = -zlib.MAX_WBITS
                self._decoder = zlib.decompressobj(self._wbits)
        return self._decode(data, room)

    def finish(self) -> bytes:
        out = self._decoder.flush()
        if not self._decoder.eof:
            raise zlib.error("the body ended before its compressed stream did")
        return out

    def _decode(self, data: bytes, room: int) -> bytes:
        self._first = False
        out = self._decoder.decompress(data, room + 1)
        # gzip allows several members one after another: each ends the decoder, the next starts anew.
        while self._decoder.eof and self._decoder.unused_data and len(out) <= room:
            rest = self._decoder.unused_data
            self._decoder = zlib.decompressobj(self._wbits)
            out += self._decoder.decompress(rest, room + 1 - len(out))
        return out


def _wait_at_most(response: requests.Response, seconds: float) -> None:
    """Let the next read of the answer's socket block for `seconds` at most (its timeout was the rest
    of the attempt's budget when the headers came). Through an https proxy it is urllib3's TLS-in-TLS
    transport, which has `settimeout` too."""
    connection = response.raw.connection if isinstance(response.raw, urllib3.HTTPResponse) else None
    settimeout = getattr(getattr(connection, "sock", None), "settimeout", None)
    if callable(settimeout):
        settimeout(seconds)
