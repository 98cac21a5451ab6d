"""Shared fixtures: one AWS emulator and one Portkey stand-in per session, a new stack per test.

They start only when a test asks for them, so unit tests stay off the network."""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any

import pytest

from local.aws import EmulatedAws
from local.poller import QueuePoller
from local.portkey import PortkeyStandIn
from local.stack import EmbeddedStack, load_function


@pytest.fixture(scope="session")
def aws() -> Iterator[EmulatedAws]:
    with EmulatedAws() as emulator:
        yield emulator


@pytest.fixture(scope="session")
def standin() -> Iterator[PortkeyStandIn]:
    with PortkeyStandIn() as server:
        yield server


@pytest.fixture
def portkey(standin: PortkeyStandIn) -> PortkeyStandIn:
    """The stand-in, with no faults left over, any key accepted and an empty request log."""
    standin.reset_state()
    return standin


@pytest.fixture
def stack(aws: EmulatedAws, portkey: PortkeyStandIn) -> EmbeddedStack:
    return EmbeddedStack.create(aws, portkey)


Configure = Callable[..., ModuleType]


@pytest.fixture
def configure(stack: EmbeddedStack, monkeypatch: pytest.MonkeyPatch) -> Iterator[Configure]:
    """Give the function the stack's environment (plus overrides) and a cold start; returns `app`."""
    app = load_function()

    def _configure(**overrides: str) -> ModuleType:
        monkeypatch.delenv("AWS_PROFILE", raising=False)
        for name, value in stack.function_environment(**overrides).items():
            if value == "":
                monkeypatch.delenv(name, raising=False)
            else:
                monkeypatch.setenv(name, value)
        app.reset()
        return app

    yield _configure
    app.reset()


@pytest.fixture
def function_log() -> Iterator[io.StringIO]:
    """What the function's Powertools Logger writes during the test, one JSON line per record.

    The logger's handler keeps the stream it was built with (the first test's stdout), so pytest's
    capture fixtures cannot be relied on to see it: the handler writes here instead while the test runs."""
    handler = load_function().logger.registered_handler
    assert isinstance(handler, logging.StreamHandler)
    buffer = io.StringIO()
    previous = handler.setStream(buffer)
    yield buffer
    handler.setStream(previous)


@pytest.fixture
def function(configure: Configure) -> ModuleType:
    """The function, configured for this test's stack."""
    return configure()


@pytest.fixture
def lambda_poller(stack: EmbeddedStack, function: ModuleType) -> QueuePoller:
    """Lambda's event source mapping feeding the real handler from this test's queue."""
    handler: Callable[[dict[str, Any], Any], Any] = function.lambda_handler
    return stack.poller(handler)
