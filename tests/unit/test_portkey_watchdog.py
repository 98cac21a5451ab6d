"""The watchdog ends an attempt's blocked read at the attempt's deadline, and never after it is over."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest
from run_tagger.portkey_watchdog import Watchdog


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    ours, theirs = socket.socketpair()
    with ours, theirs:
        ours.settimeout(10)  # a read the watchdog failed to end fails the test, late
        yield ours, theirs


@pytest.mark.timeout(10)
def test_a_read_still_blocked_at_the_deadline_ends_then(pair: tuple[socket.socket, socket.socket]) -> None:
    ours, _ = pair
    # Given an attempt with 0.1 s left, reading from a peer that sends nothing
    with Watchdog().watching(0.1) as watch:
        watch.attach_socket(ours)
        # When the deadline comes, then the read ends, empty, and the watch says it was the cause
        assert ours.recv(1) == b""
    assert watch.fired


@pytest.mark.timeout(10)
def test_an_attempt_over_before_its_deadline_is_left_alone(pair: tuple[socket.socket, socket.socket]) -> None:
    ours, theirs = pair
    watchdog = Watchdog()
    # Given an attempt that ended before its deadline
    with watchdog.watching(0.05) as early:
        early.attach_socket(ours)
    # When its deadline and a later one pass (watches fire in deadline order)
    later_ours, later_theirs = socket.socketpair()
    with later_ours, later_theirs, watchdog.watching(0.2) as later:
        later.attach_socket(later_ours)
        assert later_ours.recv(1) == b""
    # Then its socket still works and its watch never fired
    theirs.sendall(b"x")
    assert ours.recv(1) == b"x"
    assert not early.fired


@pytest.mark.timeout(10)
def test_a_sooner_deadline_is_kept_even_when_a_later_one_came_first(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    ours, _ = pair
    watchdog = Watchdog()
    # Given the watchdog asleep until an attempt due in 60 s
    with watchdog.watching(60), watchdog.watching(0.1) as sooner:
        # When an attempt due in 0.1 s starts, then its read ends at 0.1 s, not at 60 s
        sooner.attach_socket(ours)
        assert ours.recv(1) == b""
    assert sooner.fired


@pytest.mark.timeout(10)
def test_a_socket_attached_after_the_deadline_is_shut_at_once(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    ours, _ = pair
    watchdog = Watchdog()
    marker_ours, marker_theirs = socket.socketpair()
    with marker_ours, marker_theirs, watchdog.watching(0.0) as watch:
        # Given an attempt whose deadline passed before it knew its socket (a watch due later has fired)
        with watchdog.watching(0.05) as marker:
            marker.attach_socket(marker_ours)
            assert marker_ours.recv(1) == b""
        # When the socket is attached, then it is shut at once, and a read ends
        watch.attach_socket(ours)
        assert ours.recv(1) == b""
    assert watch.fired


@pytest.mark.timeout(10)
def test_a_watchdog_whose_thread_could_not_start_tries_again_at_the_next_watch(
    pair: tuple[socket.socket, socket.socket], monkeypatch: pytest.MonkeyPatch
) -> None:
    ours, _ = pair
    watchdog = Watchdog()
    # Given a first watch whose thread could not be started (the process was out of threads)
    start = threading.Thread.start

    def refuse(thread: threading.Thread) -> None:
        raise RuntimeError("can't start new thread")

    monkeypatch.setattr(threading.Thread, "start", refuse)
    with pytest.raises(RuntimeError), watchdog.watching(0.1):
        pass
    monkeypatch.setattr(threading.Thread, "start", start)
    # When the next attempt is watched, then its deadline still ends its read
    with watchdog.watching(0.1) as watch:
        watch.attach_socket(ours)
        assert ours.recv(1) == b""
    assert watch.fired
