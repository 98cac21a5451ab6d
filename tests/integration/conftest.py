"""Fixtures for the `run-tagger` command's tests: its AWS options pointed at the emulator."""

from __future__ import annotations

from types import ModuleType

import pytest

from local.stack import EmbeddedStack


@pytest.fixture
def cli(stack: EmbeddedStack, monkeypatch: pytest.MonkeyPatch, function: ModuleType) -> list[str]:
    """The common options pointing at the emulator (credentials come from the environment)."""
    for name, value in stack.aws.environment().items():
        monkeypatch.setenv(name, value)
    return ["--endpoint-url", stack.aws.endpoint_url, "--region", stack.aws.region]
