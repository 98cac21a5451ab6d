"""A 429 to one request makes every request sent with the same keys pause, for the rest of the invocation
at most; another tenant's keys are not held up, and the next invocation starts with the gate open."""

from __future__ import annotations

from run_tagger.portkey import Credentials, RateGate

ACME: Credentials = frozenset({("x-portkey-api-key", "pk-acme"), ("x-portkey-virtual-key", "vk-acme")})
GLOBEX: Credentials = frozenset({("x-portkey-api-key", "pk-globex"), ("x-portkey-virtual-key", "vk-globex")})


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_an_open_gate_lets_requests_go_now() -> None:
    assert RateGate(FakeClock()).pause(ACME) == 0.0


def test_a_hold_makes_everyone_with_the_same_keys_pause_for_its_length() -> None:
    # Given a gate held for 2 s by one request's 429
    clock = FakeClock()
    gate = RateGate(clock)
    gate.hold(ACME, 2.0)
    # When another request with the same keys asks 0.5 s later
    clock.now += 0.5
    # Then it pauses for the 1.5 s that are left
    assert gate.pause(ACME) == 1.5


def test_a_hold_does_not_pause_requests_with_other_keys() -> None:
    gate = RateGate(FakeClock())

    gate.hold(ACME, 60.0)

    assert gate.pause(GLOBEX) == 0.0


def test_a_shorter_hold_never_shortens_a_longer_one() -> None:
    clock = FakeClock()
    gate = RateGate(clock)

    gate.hold(ACME, 5.0)
    gate.hold(ACME, 1.0)

    assert gate.pause(ACME) == 5.0


def test_the_gate_opens_when_the_hold_has_passed() -> None:
    clock = FakeClock()
    gate = RateGate(clock)
    gate.hold(ACME, 1.0)

    clock.now += 1.0

    assert gate.pause(ACME) == 0.0


def test_clearing_opens_the_gate_for_everyone() -> None:
    gate = RateGate(FakeClock())
    gate.hold(ACME, 3600.0)

    gate.clear()

    assert gate.pause(ACME) == 0.0
