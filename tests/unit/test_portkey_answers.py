"""The Portkey client reads Portkey's answer whole and accepts only the run it asked for: anything else is
a permanent `invalid_response`, however the answer was encoded on the wire."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
import responses
from hypothesis import HealthCheck, given, settings
from run_tagger.errors import InvalidResponse
from run_tagger.portkey_answers import MAX_RESPONSE_BYTES

from tests.strategies import spec_valid_runs
from tests.unit.portkey_fakes import (
    METADATA,
    RUN_ID,
    RUN_URL,
    THREAD_ID,
    FakeTime,
    failure,
    modify,
    new_client,
    valid_run,
)


def _without(field_name: str) -> dict[str, Any]:
    run = valid_run()
    del run[field_name]
    return run


@pytest.mark.parametrize(
    "body",
    [
        b"<html>OK</html>",
        b"",
        b'{"id": "run_abc123", "object": ',
        json.dumps(_without("status")).encode(),
        json.dumps(valid_run(status="done")).encode(),
        json.dumps(valid_run(object="thread.message")).encode(),
        json.dumps([valid_run()]).encode(),
    ],
    ids=["html", "empty", "truncated", "missing-status", "unknown-status", "not-a-run", "array"],
)
def test_200_that_is_not_a_valid_run_is_an_invalid_response(
    portkey: responses.RequestsMock, fake_time: FakeTime, body: bytes
) -> None:
    portkey.post(RUN_URL, body=body, content_type="application/json")

    error = failure(new_client(fake_time))

    assert isinstance(error, InvalidResponse)
    assert error.code == "invalid_response"
    assert error.retryable is False
    assert error.status == 200
    assert len(portkey.calls) == 1


@pytest.mark.parametrize(
    "answer",
    [valid_run(id="run_other"), valid_run(thread_id="thread_other")],
    ids=["other-run", "other-thread"],
)
def test_200_for_another_run_is_an_invalid_response(
    portkey: responses.RequestsMock, fake_time: FakeTime, answer: dict[str, Any]
) -> None:
    portkey.post(RUN_URL, json=answer)

    error = failure(new_client(fake_time))

    assert isinstance(error, InvalidResponse)
    assert "not run" in error.message


@pytest.mark.parametrize(
    "metadata",
    [None, {}, {"team": "search"}, {"team": "other", "ticket": "T-1"}],
    ids=["null", "empty", "missing-pair", "other-value"],
)
def test_200_without_the_requested_metadata_is_an_invalid_response(
    portkey: responses.RequestsMock, fake_time: FakeTime, metadata: dict[str, str] | None
) -> None:
    portkey.post(RUN_URL, json=valid_run(metadata=metadata))

    error = failure(new_client(fake_time))

    assert isinstance(error, InvalidResponse)
    assert "metadata" in error.message


def test_200_larger_than_4_mib_is_an_invalid_response(
    portkey: responses.RequestsMock, fake_time: FakeTime
) -> None:
    huge = valid_run(instructions="x" * MAX_RESPONSE_BYTES)
    portkey.post(RUN_URL, json=huge)

    error = failure(new_client(fake_time))

    assert isinstance(error, InvalidResponse)
    assert str(MAX_RESPONSE_BYTES) in error.message


def test_200_just_under_4_mib_is_accepted(portkey: responses.RequestsMock, fake_time: FakeTime) -> None:
    run = valid_run(instructions="")
    padding = MAX_RESPONSE_BYTES - len(json.dumps(run).encode()) - 1000
    portkey.post(RUN_URL, json=valid_run(instructions="x" * padding))

    assert modify(new_client(fake_time))["instructions"] == "x" * padding


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
@given(drawn=spec_valid_runs())
def test_any_spec_valid_run_of_the_requested_run_and_metadata_is_returned_unchanged(
    drawn: dict[str, object],
) -> None:
    answer = copy.deepcopy(drawn)
    answer.update(id=RUN_ID, thread_id=THREAD_ID, metadata=dict(METADATA))
    with responses.RequestsMock() as mock:
        mock.post(RUN_URL, json=answer)

        assert modify(new_client(FakeTime())) == answer


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_a_run_with_a_non_json_number_is_an_invalid_response(
    portkey: responses.RequestsMock, fake_time: FakeTime, constant: str
) -> None:
    # Given a run whose field the schema does not know holds a number JSON does not have
    body = json.dumps(valid_run(tool_resources={"score": 0.5})).replace("0.5", constant).encode()
    portkey.post(RUN_URL, body=body, content_type="application/json")

    error = failure(new_client(fake_time))

    assert isinstance(error, InvalidResponse)
    assert error.message == "response is not JSON"
