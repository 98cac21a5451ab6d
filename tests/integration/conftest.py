"""Fixtures of the integration tests: the `run-tagger` command's AWS options pointed at the emulator, and
a FIFO stack beside the test's own."""

from __future__ import annotations

from types import ModuleType

import pytest

from local.stack import EmbeddedStack
from tests.conftest import Configure


@pytest.fixture
def cli(stack: EmbeddedStack, monkeypatch: pytest.MonkeyPatch, function: ModuleType) -> list[str]:
    """The common options pointing at the emulator (credentials come from the environment)."""
    for name, value in stack.aws.environment().items():
        monkeypatch.setenv(name, value)
    return ["--endpoint-url", stack.aws.endpoint_url, "--region", stack.aws.region]


@pytest.fixture
def fifo(stack: EmbeddedStack) -> EmbeddedStack:
    return EmbeddedStack.create(stack.aws, stack.portkey, fifo=True)


@pytest.fixture
def fifo_function(fifo: EmbeddedStack, configure: Configure, function: ModuleType) -> ModuleType:
    """The function, configured for the FIFO stack (after, never before, the default `function`)."""
    return configure(**fifo.function_environment())
