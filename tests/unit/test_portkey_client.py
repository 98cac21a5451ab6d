"""Unit tests of `run_tagger.portkey.PortkeyClient` against an in-memory HTTP mock (`responses`).

Time never passes for real: the client's clock, sleep and jitter are fakes.
"""

from __future__ import annotations

import email.utils
import json
import time

import pytest
import requests
import responses
from run_tagger.errors import (
    DeadlineExceeded,
    InvalidResponse,
    PortkeyRejected,
    PortkeyUnavailable,
    RunNotFound,
    Unauthorized,
)

from tests.unit.portkey_fakes import (
    API_KEY,
    KEY_HEADERS,
    METADATA,
    RUN_ID,
    RUN_URL,
    FakeJitter,
    FakeTime,
    failure,
    modify,
    new_client,
    openai_error,
    valid_run,
)

PROVIDER_KEY = "sk-proj-Pr0viderS3cret"
CONFIG_ID = "pc-routing-c0nfig"
RETRYABLE = [408, 409, 429, 500, 502, 503, 504]


# --- the request -----------------------------------------------------------------------------------


def test_modify_run_posts_the_metadata_to_the_run_url(
    portkey: responses.RequestsMock, fake_time: FakeTime
) -> None:
    portkey.post(RUN_URL, json=valid_run())

    modify(new_client(fake_time))

    assert len(portkey.calls) == 1
    sent = portkey.calls[0].request
    assert sent.method == "POST"
    assert sent.url == RUN_URL
    assert sent.body is not None
    assert json.loads(sent.body) == {"metadata": METADATA}


def test_modify_run_sends_the_keys_json_content_type_and_assistants_v2_headers(
    portkey: responses.RequestsMock, fake_time: FakeTime
) -> None:
    portkey.post(RUN_URL, json=valid_run())

    modify(new_client(fake_time))

    headers = portkey.calls[0].request.headers
    assert headers["x-portkey-api-key"] == API_KEY
    assert headers["x-portkey-virtual-key"] == "vk-openai-prod"
    assert headers["Content-Type"] == "application/json"
    assert headers["OpenAI-Beta"] == "assistants=v2"


def test_metadata_with_non_ascii_text_arrives_as_sent(
    portkey: responses.RequestsMock, fake_time: FakeTime
) -> None:
    metadata = {"équipe": "recherche ✓", "quote": 'say "hi"'}
    portkey.post(RUN_URL, json=valid_run(metadata=metadata))

    modify(new_client(fake_time), metadata=metadata)

    body = portkey.calls[0].request.body
    assert body is not None
    assert json.loads(body) == {"metadata": metadata}


def test_modify_run_returns_the_run_with_fields_the_schema_does_not_know(
    portkey: responses.RequestsMock, fake_time: FakeTime
) -> None:
    answer = valid_run(tool_resources={"code_interpreter": {"file_ids": []}}, temperature=1, top_p=None)
    portkey.post(RUN_URL, json=answer)

    assert modify(new_client(fake_time)) == answer


def test_attempt_timeout_never_reaches_past_the_deadline(
    portkey: responses.RequestsMock, fake_time: FakeTime
) -> None:
    portkey.post(RUN_URL, json=valid_run())

    modify(new_client(fake_time, timeout=10.0), deadline=3.0)

    assert vars(portkey.calls[0].request)["req_kwargs"]["timeout"].total == pytest.approx(3.0)


def test_attempt_timeout_is_the_configured_one_when_time_is_plenty(
    portkey: responses.RequestsMock, fake_time: FakeTime
) -> None:
    portkey.post(RUN_URL, json=valid_run())

    modify(new_client(fake_time, timeout=10.0))

    assert vars(portkey.calls[0].request)["req_kwargs"]["timeout"].total == pytest.approx(10.0)


def test_redirect_is_not_followed_so_keys_never_reach_another_host(
    portkey: responses.RequestsMock, fake_time: FakeTime
) -> None:
    portkey.post(RUN_URL, status=307, headers={"Location": "https://elsewhere.test/collect"})
    elsewhere = portkey.post("https://elsewhere.test/collect", json=valid_run())

    error = failure(new_client(fake_time))

    assert elsewhere.call_count == 0
    assert len(portkey.calls) == 1
    assert isinstance(error, InvalidResponse)


# --- permanent answers -----------------------------------------------------------------------------


def test_404_is_run_not_found_with_portkeys_message(
    portkey: responses.RequestsMock, fake_time: FakeTime
) -> None:
    portkey.post(RUN_URL, status=404, json=openai_error(f"No run found with id '{RUN_ID}'."))

    error = failure(new_client(fake_time))

    assert isinstance(error, RunNotFound)
    assert error.code == "run_not_found"
    assert error.status == 404
    assert error.retryable is False
    assert f"No run found with id '{RUN_ID}'." in error.message
    assert len(portkey.calls) == 1


def test_portkey_gateway_error_shape_keeps_its_message(
    portkey: responses.RequestsMock, fake_time: FakeTime
) -> None:
    portkey.post(RUN_URL, status=400, json={"status": "failure", "message": "Invalid virtual key"})

    error = failure(new_client(fake_time))

    assert isinstance(error, PortkeyRejected)
    assert "Invalid virtual key" in error.message


@pytest.mark.parametrize("status", [400, 405, 413, 422, 446])
def test_other_4xx_is_portkey_rejected_with_the_message_and_not_retried(
    portkey: responses.RequestsMock, fake_time: FakeTime, status: int
) -> None:
    portkey.post(
        RUN_URL,
        status=status,
        json=openai_error("Invalid 'metadata': too many keys"),
        headers={"Retry-After": "1"},
    )

    error = failure(new_client(fake_time))

    assert isinstance(error, PortkeyRejected)
    assert error.code == "portkey_rejected"
    assert error.status == status
    assert "Invalid 'metadata': too many keys" in error.message
    assert len(portkey.calls) == 1
    assert fake_time.sleeps == []


@pytest.mark.parametrize("status", [401, 403])
def test_401_and_403_are_unauthorized(
    portkey: responses.RequestsMock, fake_time: FakeTime, status: int
) -> None:
    portkey.post(RUN_URL, status=status, json=openai_error("Invalid API key"))

    error = failure(new_client(fake_time))

    assert isinstance(error, Unauthorized)
    assert error.code == "unauthorized"
    assert error.status == status
    assert len(portkey.calls) == 1


@pytest.mark.parametrize("status", [400, 401, 403, 404, 503])
def test_message_that_echoes_a_key_never_carries_it(
    portkey: responses.RequestsMock, fake_time: FakeTime, status: int
) -> None:
    headers = {
        "x-portkey-api-key": API_KEY,
        "x-portkey-config": CONFIG_ID,
        "x-portkey-provider": "openai",
        "Authorization": f"Bearer {PROVIDER_KEY}",
    }
    echo = f"Incorrect API key provided: {API_KEY}; provider key {PROVIDER_KEY}; config {CONFIG_ID}"
    portkey.post(RUN_URL, status=status, json=openai_error(echo))

    error = failure(new_client(fake_time), headers=headers)

    for secret in (API_KEY, PROVIDER_KEY, CONFIG_ID):
        assert secret not in str(error)
        assert secret not in repr(error)
        assert secret not in json.dumps(error.to_detail())
    assert "Incorrect API key provided" in error.message


def test_message_that_echoes_a_masked_key_never_carries_its_parts(
    portkey: responses.RequestsMock, fake_time: FakeTime
) -> None:
    portkey.post(RUN_URL, status=401, json=openai_error("Incorrect API key provided: sk-proj-Pr0***S3cret."))

    error = failure(new_client(fake_time))

    assert "Pr0***S3cret" not in error.message


def test_a_page_echoing_a_key_across_its_300th_character_carries_no_part_of_it(
    portkey: responses.RequestsMock, fake_time: FakeTime
) -> None:
    # Given a proxy's HTML error page that echoes a key with no known prefix, across the part kept
    key = "Zq8mR2vT9xLw4NcB7yHsK3pD6fJ1aE5u"
    page = "<html>" + "." * 254 + f"bad header x-portkey-api-key: {key}</html>"
    assert page.index(key) < 300 < page.index(key) + len(key)
    portkey.post(RUN_URL, status=400, body=page)
    # When the request fails with it
    error = failure(new_client(fake_time), headers={**KEY_HEADERS, "x-portkey-api-key": key})
    # Then no piece of the key is in the message
    assert key[:8] not in error.message
    assert error.message.startswith("<html>....")


def test_error_body_that_is_not_json_is_kept_as_the_message(
    portkey: responses.RequestsMock, fake_time: FakeTime
) -> None:
    portkey.post(RUN_URL, status=404, body="<html>Not Found</html>")

    error = failure(new_client(fake_time))

    assert isinstance(error, RunNotFound)
    assert "Not Found" in error.message


# --- transient answers: retries, Retry-After and backoff --------------------------------------------


@pytest.mark.parametrize("status", RETRYABLE)
def test_transient_status_is_retried_until_portkey_answers(
    portkey: responses.RequestsMock, fake_time: FakeTime, status: int
) -> None:
    portkey.post(RUN_URL, status=status, json=openai_error("busy"))
    portkey.post(RUN_URL, status=status, json=openai_error("busy"))
    portkey.post(RUN_URL, json=valid_run())

    run = modify(new_client(fake_time, max_attempts=3))

    assert run["id"] == RUN_ID
    assert len(portkey.calls) == 3
    assert len(fake_time.sleeps) == 2


@pytest.mark.parametrize("status", RETRYABLE)
def test_transient_status_until_attempts_run_out_is_portkey_unavailable_with_the_status(
    portkey: responses.RequestsMock, fake_time: FakeTime, status: int
) -> None:
    portkey.post(RUN_URL, status=status, json=openai_error("overloaded"))

    error = failure(new_client(fake_time, max_attempts=4))

    assert isinstance(error, PortkeyUnavailable)
    assert error.code == "portkey_unavailable"
    assert error.retryable is True
    assert error.status == status
    assert "overloaded" in error.message
    assert len(portkey.calls) == 4


def test_one_attempt_configured_means_no_retry(portkey: responses.RequestsMock, fake_time: FakeTime) -> None:
    portkey.post(RUN_URL, status=503)

    error = failure(new_client(fake_time, max_attempts=1))

    assert isinstance(error, PortkeyUnavailable)
    assert len(portkey.calls) == 1
    assert fake_time.sleeps == []


def test_retry_after_in_seconds_is_honoured(portkey: responses.RequestsMock, fake_time: FakeTime) -> None:
    portkey.post(RUN_URL, status=429, headers={"Retry-After": "3"})
    portkey.post(RUN_URL, json=valid_run())

    modify(new_client(fake_time))

    assert fake_time.sleeps == [3.0]


def test_retry_after_as_an_http_date_is_honoured(
    portkey: responses.RequestsMock, fake_time: FakeTime
) -> None:
    portkey.post(
        RUN_URL, status=503, headers={"Retry-After": email.utils.formatdate(time.time() + 30, usegmt=True)}
    )
    portkey.post(RUN_URL, json=valid_run())

    modify(new_client(fake_time))

    assert len(fake_time.sleeps) == 1
    assert 28.0 <= fake_time.sleeps[0] <= 30.0


def test_retry_after_ms_is_honoured_to_the_millisecond(
    portkey: responses.RequestsMock, fake_time: FakeTime
) -> None:
    portkey.post(RUN_URL, status=429, headers={"retry-after-ms": "1500", "Retry-After": "2"})
    portkey.post(RUN_URL, json=valid_run())

    modify(new_client(fake_time))

    assert fake_time.sleeps == [1.5]


def test_without_retry_after_the_wait_is_full_jitter_over_a_growing_step(
    portkey: responses.RequestsMock, fake_time: FakeTime, jitter: FakeJitter
) -> None:
    portkey.post(RUN_URL, status=500)
    portkey.post(RUN_URL, status=500)
    portkey.post(RUN_URL, status=500)
    portkey.post(RUN_URL, json=valid_run())

    modify(new_client(fake_time, jitter, max_attempts=4))

    assert [low for low, _ in jitter.bounds] == [0.0, 0.0, 0.0]
    highs = [high for _, high in jitter.bounds]
    assert highs[0] > 0
    assert highs == sorted(highs)
    assert highs[0] < highs[-1]
    assert fake_time.sleeps == highs


def test_unparsable_retry_after_falls_back_to_jittered_backoff(
    portkey: responses.RequestsMock, fake_time: FakeTime, jitter: FakeJitter
) -> None:
    portkey.post(RUN_URL, status=503, headers={"Retry-After": "soon"})
    portkey.post(RUN_URL, json=valid_run())

    modify(new_client(fake_time, jitter))

    assert len(jitter.bounds) == 1
    assert fake_time.sleeps == [jitter.bounds[0][1]]


@pytest.mark.parametrize(
    "broken",
    [
        requests.ConnectionError("connection refused"),
        requests.exceptions.ConnectTimeout("connect timed out"),
        requests.exceptions.ReadTimeout("read timed out"),
    ],
    ids=["connection-error", "connect-timeout", "read-timeout"],
)
def test_connection_error_or_timeout_is_retried(
    portkey: responses.RequestsMock, fake_time: FakeTime, broken: Exception
) -> None:
    portkey.post(RUN_URL, body=broken)
    portkey.post(RUN_URL, json=valid_run())

    assert modify(new_client(fake_time))["id"] == RUN_ID
    assert len(portkey.calls) == 2


@pytest.mark.parametrize(
    "broken",
    [requests.ConnectionError("connection refused"), requests.exceptions.ReadTimeout("read timed out")],
    ids=["connection-error", "timeout"],
)
def test_connection_error_or_timeout_on_every_attempt_is_portkey_unavailable(
    portkey: responses.RequestsMock, fake_time: FakeTime, broken: Exception
) -> None:
    portkey.post(RUN_URL, body=broken)

    error = failure(new_client(fake_time, max_attempts=3))

    assert isinstance(error, PortkeyUnavailable)
    assert error.retryable is True
    assert error.status is None
    assert len(portkey.calls) == 3


# --- the deadline ----------------------------------------------------------------------------------


def test_retry_that_would_pass_the_deadline_is_not_attempted(
    portkey: responses.RequestsMock, fake_time: FakeTime
) -> None:
    portkey.post(RUN_URL, status=429, headers={"Retry-After": "20"})
    portkey.post(RUN_URL, json=valid_run())

    error = failure(new_client(fake_time), deadline=10.0)

    assert isinstance(error, PortkeyUnavailable)
    assert error.status == 429
    assert len(portkey.calls) == 1
    assert fake_time.sleeps == []


def test_backoff_stops_before_the_deadline_and_no_attempt_starts_after_it(
    portkey: responses.RequestsMock, fake_time: FakeTime, jitter: FakeJitter
) -> None:
    started: list[float] = []

    def busy(_request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        started.append(fake_time.now)
        return 503, {}, ""

    portkey.add_callback(responses.POST, RUN_URL, callback=busy)

    error = failure(new_client(fake_time, jitter, max_attempts=10), deadline=2.0)

    assert isinstance(error, PortkeyUnavailable)
    assert len(started) >= 2
    assert all(moment <= 2.0 - 0.5 for moment in started)
    assert fake_time.now <= 2.0 - 0.5


@pytest.mark.parametrize("left", [0.49, 0.0, -3.0])
def test_attempt_with_less_than_half_a_second_left_is_not_started(
    portkey: responses.RequestsMock, fake_time: FakeTime, left: float
) -> None:
    portkey.post(RUN_URL, json=valid_run())

    error = failure(new_client(fake_time), deadline=fake_time.now + left)

    assert isinstance(error, DeadlineExceeded)
    assert error.code == "deadline_exceeded"
    assert error.retryable is True
    assert len(portkey.calls) == 0


def test_a_429_makes_the_next_request_of_the_client_wait_too(
    portkey: responses.RequestsMock, fake_time: FakeTime
) -> None:
    # Given one request that met a 429 asking for 3 s, then succeeded
    portkey.add(
        responses.POST, RUN_URL, json=openai_error("slow down"), status=429, headers={"Retry-After": "3"}
    )
    portkey.add(responses.POST, RUN_URL, json=valid_run())
    portkey.add(responses.POST, RUN_URL, json=valid_run())
    client = new_client(fake_time)
    modify(client)
    assert fake_time.sleeps == [3.0]
    # When another request starts while the pause is still on (the clock went back 2 s for it)
    fake_time.now -= 2.0
    modify(client)
    # Then it waited out the 2 s that were left before calling Portkey
    assert fake_time.sleeps == [3.0, 2.0]


def test_a_429_does_not_hold_up_a_request_with_another_tenants_keys(
    portkey: responses.RequestsMock, fake_time: FakeTime
) -> None:
    # Given a request that met a 429 asking for 3 s, then succeeded
    portkey.add(responses.POST, RUN_URL, status=429, headers={"Retry-After": "3"})
    portkey.add(responses.POST, RUN_URL, json=valid_run())
    portkey.add(responses.POST, RUN_URL, json=valid_run())
    client = new_client(fake_time)
    modify(client)
    # When a request with another tenant's keys starts while the pause is still on
    fake_time.now -= 2.0
    modify(client, headers={"x-portkey-api-key": "pk-globex", "x-portkey-virtual-key": "vk-globex"})
    # Then it went at once
    assert fake_time.sleeps == [3.0]


def test_a_429_holds_up_requests_of_its_own_invocation_only(
    portkey: responses.RequestsMock, fake_time: FakeTime
) -> None:
    # Given an invocation whose request met a 429 asking for an hour, more than it had left
    portkey.add(responses.POST, RUN_URL, status=429, headers={"Retry-After": "3600"})
    portkey.add(responses.POST, RUN_URL, json=valid_run())
    client = new_client(fake_time)
    assert isinstance(failure(client), PortkeyUnavailable)
    # When the next invocation starts and sends a request with the same keys
    client.start_invocation()
    modify(client)
    # Then it was sent at once, without waiting out the earlier invocation's pause
    assert fake_time.sleeps == []
    assert len(portkey.calls) == 2


@pytest.mark.parametrize("value", ["inf", "nan", "-inf"])
def test_a_retry_after_ms_that_is_not_a_finite_number_falls_back_to_backoff(
    portkey: responses.RequestsMock, fake_time: FakeTime, jitter: FakeJitter, value: str
) -> None:
    portkey.post(RUN_URL, status=429, headers={"retry-after-ms": value})
    portkey.post(RUN_URL, json=valid_run())

    modify(new_client(fake_time, jitter))

    assert fake_time.sleeps == [jitter.bounds[0][1]]
