"""Unit-test fixtures: an in-memory HTTP mock in place of Portkey (`responses`), and fake time."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import responses

from tests.unit.portkey_fakes import FakeJitter, FakeTime


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


@pytest.fixture
def jitter() -> FakeJitter:
    return FakeJitter()


@pytest.fixture
def portkey() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock
