"""The Portkey client reads Portkey's answer whole and accepts only the run it asked for: anything else is
a permanent `invalid_response`, however the answer was encoded on the wire."""

from __future__ import annotations

import copy
import gzip
import json
import zlib
from typing import Any

import pytest
import responses
from hypothesis import HealthCheck, given, settings
from run_tagger.errors import InvalidResponse, RunNotFound
from run_tagger.portkey_body import MAX_RESPONSE_BYTES

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
    openai_error,
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


@pytest.mark.parametrize("status", [301, 302, 307])
def test_a_redirect_carrying_a_run_is_an_invalid_response_not_a_success(
    portkey: responses.RequestsMock, fake_time: FakeTime, status: int
) -> None:
    # Given a proxy answering with a redirect whose body happens to be the run (redirects are not followed)
    portkey.post(RUN_URL, json=valid_run(), status=status, headers={"Location": "https://elsewhere.test/"})
    # When the run is modified
    error = failure(new_client(fake_time))
    # Then only a 2xx counts as Portkey's answer
    assert isinstance(error, InvalidResponse)
    assert error.status == status


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


# --- encodings: decoded by the client itself, as the body arrives ------------------------------------


def _encoded(encoding: str, data: bytes) -> bytes:
    match encoding:
        case "gzip":
            return gzip.compress(data)
        case "gzip, two members":
            half = len(data) // 2
            return gzip.compress(data[:half]) + gzip.compress(data[half:])
        case "deflate":  # HTTP's deflate: the zlib format
            return zlib.compress(data)
        case _:  # "raw deflate", which some servers send as deflate
            compressor = zlib.compressobj(wbits=-zlib.MAX_WBITS)
            return compressor.compress(data) + compressor.flush()


@pytest.mark.parametrize("encoding", ["gzip", "gzip, two members", "deflate", "raw deflate"])
def test_a_compressed_run_is_read_like_a_plain_one(
    portkey: responses.RequestsMock, fake_time: FakeTime, encoding: str
) -> None:
    run = valid_run(instructions="be brief " * 200)
    header = encoding.split(",", maxsplit=1)[0].replace("raw ", "")
    body = _encoded(encoding, json.dumps(run).encode())
    portkey.post(RUN_URL, body=body, content_type="application/json", headers={"Content-Encoding": header})

    assert modify(new_client(fake_time)) == run


def test_the_client_asks_only_for_the_encodings_it_decodes(
    portkey: responses.RequestsMock, fake_time: FakeTime
) -> None:
    portkey.post(RUN_URL, json=valid_run())

    modify(new_client(fake_time))

    assert portkey.calls[0].request.headers["Accept-Encoding"] == "gzip, deflate"


@pytest.mark.parametrize(
    ("encoding", "body", "reason"),
    [
        ("gzip", json.dumps(valid_run()).encode(), "response is not valid gzip"),
        ("gzip", gzip.compress(json.dumps(valid_run()).encode())[:-12], "response is not valid gzip"),
        ("br", b"\x1b\x00\x00", "response encoded as 'br', which was not asked for"),
    ],
    ids=["plain-body-labelled-gzip", "gzip-cut-short", "an-encoding-not-asked-for"],
)
def test_a_200_whose_body_is_not_its_encoding_is_an_invalid_response_at_once(
    portkey: responses.RequestsMock, fake_time: FakeTime, encoding: str, body: bytes, reason: str
) -> None:
    portkey.post(RUN_URL, body=body, content_type="application/json", headers={"Content-Encoding": encoding})

    error = failure(new_client(fake_time))

    assert isinstance(error, InvalidResponse)
    assert (error.message, error.retryable, error.status) == (reason, False, 200)
    assert len(portkey.calls) == 1


def test_a_404_whose_body_is_not_its_encoding_is_still_run_not_found(
    portkey: responses.RequestsMock, fake_time: FakeTime
) -> None:
    body = json.dumps(openai_error("No run found with id 'run_abc123'.")).encode()
    portkey.post(RUN_URL, status=404, body=body, headers={"Content-Encoding": "gzip"})

    error = failure(new_client(fake_time))

    assert isinstance(error, RunNotFound)
    assert error.message == "response is not valid gzip"


def test_bytes_after_the_end_of_a_gzip_body_are_ignored(
    portkey: responses.RequestsMock, fake_time: FakeTime
) -> None:
    # Given a gzip body followed by a stray newline, which other clients ignore too
    run = valid_run()
    body = gzip.compress(json.dumps(run).encode()) + b"\n"
    portkey.post(RUN_URL, body=body, content_type="application/json", headers={"Content-Encoding": "gzip"})

    assert modify(new_client(fake_time)) == run


def test_an_empty_error_body_labelled_gzip_has_no_message_not_a_decoding_error(
    portkey: responses.RequestsMock, fake_time: FakeTime
) -> None:
    portkey.post(RUN_URL, status=404, body=b"", headers={"Content-Encoding": "gzip"})

    error = failure(new_client(fake_time))

    assert isinstance(error, RunNotFound)
    assert error.message == "no message"
