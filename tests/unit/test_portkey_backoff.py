"""How long the Portkey client waits between attempts, whom a wait holds up, and when it gives up instead.

Time never passes for real: the client's clock, sleep and jitter are fakes."""

from __future__ import annotations

import responses
from run_tagger.errors import PortkeyUnavailable
from run_tagger.portkey import BACKOFF_BASE_SECONDS, BACKOFF_CAP_SECONDS, MIN_ATTEMPT_SECONDS

from tests.unit.portkey_fakes import RUN_URL, FakeJitter, FakeTime, failure, modify, new_client, valid_run


def test_the_backoff_step_doubles_from_its_base_up_to_its_cap(
    portkey: responses.RequestsMock, fake_time: FakeTime, jitter: FakeJitter
) -> None:
    # Given Portkey failing seven times without a Retry-After, then answering
    for _ in range(7):
        portkey.post(RUN_URL, status=502)
    portkey.post(RUN_URL, json=valid_run())
    # When a request is made with room for eight attempts
    modify(new_client(fake_time, jitter, max_attempts=8))
    # Then each wait is drawn from zero to a step that doubles from the base and never passes the cap
    assert jitter.bounds == [(0.0, min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2**n)) for n in range(7)]


def test_a_503s_retry_after_holds_up_only_its_own_request(
    portkey: responses.RequestsMock, fake_time: FakeTime
) -> None:
    # Given a request that met a 503 asking for 3 s, then succeeded
    portkey.post(RUN_URL, status=503, headers={"Retry-After": "3"})
    portkey.post(RUN_URL, json=valid_run())
    portkey.post(RUN_URL, json=valid_run())
    client = new_client(fake_time)
    modify(client)
    assert fake_time.sleeps == [3.0]
    # When another request with the same keys starts within those 3 s
    fake_time.now -= 2.0
    modify(client)
    # Then it went at once: only a 429 (rate limiting) pauses the other requests
    assert fake_time.sleeps == [3.0]


def test_a_retry_that_would_leave_no_time_for_its_attempt_gives_up_at_once(
    portkey: responses.RequestsMock, fake_time: FakeTime
) -> None:
    # Given a 429 asking for 1 s, with 1 s and a little less than an attempt's minimum left after it
    portkey.post(RUN_URL, status=429, headers={"Retry-After": "1"})
    portkey.post(RUN_URL, json=valid_run())
    deadline = fake_time.now + 1.0 + MIN_ATTEMPT_SECONDS - 0.1
    # When the request is made
    error = failure(new_client(fake_time), deadline=deadline)
    # Then it fails with Portkey's own answer, without waiting for an attempt it could not make
    assert isinstance(error, PortkeyUnavailable)
    assert error.status == 429
    assert fake_time.sleeps == []
    assert len(portkey.calls) == 1


def test_a_rate_limit_pause_lasting_past_the_deadline_fails_at_once(
    portkey: responses.RequestsMock, fake_time: FakeTime
) -> None:
    # Given a request that met a 429 asking for 10 s, then succeeded
    portkey.post(RUN_URL, status=429, headers={"Retry-After": "10"})
    portkey.post(RUN_URL, json=valid_run())
    client = new_client(fake_time)
    modify(client)
    # When another request with the same keys starts with 9 s of that pause left but only 3 s to its deadline
    fake_time.now -= 9.0
    error = failure(client, deadline=fake_time.now + 3.0)
    # Then it fails as rate-limited, at once: no sleep, no call
    assert isinstance(error, PortkeyUnavailable)
    assert error.status == 429
    assert "rate-limiting" in error.message
    assert fake_time.sleeps == [10.0]
    assert len(portkey.calls) == 2  # the first request's two
