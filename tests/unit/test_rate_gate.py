"""A 429 to one request makes every request of the client pause, not only the one that met it."""

from __future__ import annotations

from run_tagger.portkey import RateGate


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_an_open_gate_lets_requests_go_now() -> None:
    assert RateGate(FakeClock()).pause() == 0.0


def test_a_hold_makes_everyone_pause_for_its_length() -> None:
    # Given a gate held for 2 s by one request's 429
    clock = FakeClock()
    gate = RateGate(clock)
    gate.hold(2.0)
    # When another request asks 0.5 s later
    clock.now += 0.5
    # Then it pauses for the 1.5 s that are left
    assert gate.pause() == 1.5


def test_a_shorter_hold_never_shortens_a_longer_one() -> None:
    clock = FakeClock()
    gate = RateGate(clock)

    gate.hold(5.0)
    gate.hold(1.0)

    assert gate.pause() == 5.0


def test_the_gate_opens_when_the_hold_has_passed() -> None:
    clock = FakeClock()
    gate = RateGate(clock)
    gate.hold(1.0)

    clock.now += 1.0

    assert gate.pause() == 0.0
