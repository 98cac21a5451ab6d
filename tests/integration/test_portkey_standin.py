"""The Portkey stand-in over real sockets: what run-tagger's tests and the local stack rely on."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
import requests
from openai.types.beta.threads import Run as OpenAIRun

from local.portkey import Fault, PortkeyStandIn
from local.runs import make_run

THREAD_ID = "thread_abc123"
RUN_ID = "run_abc123"
HEADERS = {
    "x-portkey-api-key": "pk-test",
    "x-portkey-virtual-key": "vk-test",
    "OpenAI-Beta": "assistants=v2",
}
REQUIRED_RUN_FIELDS = {
    "id", "object", "created_at", "thread_id", "assistant_id", "status", "required_action", "last_error",
    "expires_at", "started_at", "cancelled_at", "failed_at", "completed_at", "model", "instructions", "tools",
    "metadata", "usage", "incomplete_details", "max_prompt_tokens", "max_completion_tokens",
    "truncation_strategy", "tool_choice", "parallel_tool_calls", "response_format", "temperature", "top_p",
    "tool_resources",
}  # fmt: skip
ASSISTANTS_DEPRECATED = "ignore:The Assistants API is deprecated:DeprecationWarning"


@pytest.fixture
def standin() -> Iterator[PortkeyStandIn]:
    with PortkeyStandIn() as server:
        yield server


def run_url(standin: PortkeyStandIn, thread_id: str = THREAD_ID, run_id: str = RUN_ID) -> str:
    return f"{standin.base_url}/threads/{thread_id}/runs/{run_id}"


def modify(
    standin: PortkeyStandIn,
    body: Any,
    headers: dict[str, str] = HEADERS,
    run_id: str = RUN_ID,
    session: requests.Session | None = None,
) -> requests.Response:
    post = session.post if session is not None else requests.post
    return post(run_url(standin, run_id=run_id), json=body, headers=headers, timeout=5)


def without(name: str) -> dict[str, str]:
    return {key: value for key, value in HEADERS.items() if key != name}


def assert_openai_error(response: requests.Response, status: int, param: str | None = None) -> str:
    """The status and the exact OpenAI error shape; returns the message for further checks."""
    assert response.status_code == status
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["param"] == param
    assert isinstance(error["message"], str)
    assert error["message"]
    return error["message"]


# -- Modify run and Retrieve run -------------------------------------------------------------------


def test_modify_run_returns_the_whole_run_with_the_new_metadata(standin: PortkeyStandIn) -> None:
    # when
    response = modify(standin, {"metadata": {"team": "search", "ticket": "T-1"}})
    # then
    assert response.status_code == 200
    run = response.json()
    assert set(run) >= REQUIRED_RUN_FIELDS
    assert (run["id"], run["thread_id"], run["object"]) == (RUN_ID, THREAD_ID, "thread.run")
    assert run["metadata"] == {"team": "search", "ticket": "T-1"}


def test_modify_run_replaces_the_metadata_as_a_whole(standin: PortkeyStandIn) -> None:
    # given
    modify(standin, {"metadata": {"team": "search", "ticket": "T-1"}})
    # when
    response = modify(standin, {"metadata": {"stage": "done"}})
    # then
    assert response.json()["metadata"] == {"stage": "done"}


def test_retrieve_after_modify_shows_the_new_metadata(standin: PortkeyStandIn) -> None:
    # given
    modify(standin, {"metadata": {"team": "search"}})
    # when
    response = requests.get(run_url(standin), headers=HEADERS, timeout=5)
    # then
    assert response.status_code == 200
    assert response.json()["metadata"] == {"team": "search"}
    assert standin.get_run(THREAD_ID, RUN_ID) == response.json()


def test_a_run_is_the_same_for_the_same_id_on_every_server() -> None:
    # given two servers that never shared state
    with PortkeyStandIn() as first, PortkeyStandIn() as second:
        # when
        runs = [requests.get(run_url(s), headers=HEADERS, timeout=5).json() for s in (first, second)]
    # then
    assert runs[0] == runs[1]


@pytest.mark.parametrize("run_id", [f"run_{n:04d}" for n in range(40)])
def test_made_up_runs_are_valid_assistants_v2_runs(run_id: str) -> None:
    # when
    run = make_run(THREAD_ID, run_id)
    # then
    assert set(run) >= REQUIRED_RUN_FIELDS
    # openai-python types `instructions` as str, but real answers carry null (DESIGN 1.2)
    assert OpenAIRun.model_validate({**run, "instructions": run["instructions"] or ""}).id == run_id
    assert run["assistant_id"].startswith("asst_")
    for limit in ("max_prompt_tokens", "max_completion_tokens"):
        assert run[limit] is None or run[limit] >= 256


def test_made_up_runs_are_mostly_completed() -> None:
    statuses = [make_run(THREAD_ID, f"run_{n}")["status"] for n in range(200)]
    assert statuses.count("completed") > 100
    assert len(set(statuses)) > 1  # the nullable fields get exercised too


# -- header checks ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "status", "says"),
    [
        (without("x-portkey-api-key"), 401, "x-portkey-api-key"),
        (without("x-portkey-virtual-key"), 400, "x-portkey-provider"),
        (without("OpenAI-Beta"), 400, "'OpenAI-Beta: assistants=v2'"),
        ({**HEADERS, "OpenAI-Beta": "assistants=v1"}, 400, "'OpenAI-Beta: assistants=v2'"),
    ],
    ids=["no-api-key", "no-routing-header", "no-beta-header", "beta-v1"],
)
def test_a_missing_header_is_refused(
    standin: PortkeyStandIn, headers: dict[str, str], status: int, says: str
) -> None:
    assert says in assert_openai_error(modify(standin, {"metadata": {}}, headers=headers), status)


@pytest.mark.parametrize(
    "routing",
    [
        {"x-portkey-provider": "@openai-prod"},
        {"x-portkey-config": "pc-tagger-1a2b3c"},
        {"x-portkey-provider": "openai", "Authorization": "Bearer sk-provider"},  # provider_api_key
    ],
)
def test_any_one_routing_header_will_do(standin: PortkeyStandIn, routing: dict[str, str]) -> None:
    headers = {**without("x-portkey-virtual-key"), **routing}
    assert modify(standin, {"metadata": {}}, headers=headers).status_code == 200


def test_a_key_not_accepted_is_401_until_the_key_is_rotated(standin: PortkeyStandIn) -> None:
    # given the server accepts only the new key
    standin.accept_api_keys({"pk-rotated"})
    # when / then
    message = assert_openai_error(modify(standin, {"metadata": {}}), 401)
    assert "pk-test" not in message  # a key never comes back in an error
    assert modify(standin, {"metadata": {}}, headers={**HEADERS, "x-portkey-api-key": "pk-rotated"}).ok


@pytest.mark.parametrize(
    ("body", "content_type", "says"),
    [
        (b'{"metadata": {}}', None, "Content-Type"),
        (b"metadata=x", "text/plain", "Content-Type"),
        (b'{"metadata": {', "application/json", "JSON body"),
        (b'[{"metadata": {}}]', "application/json", "expected an object"),
    ],
    ids=["no-content-type", "form-body", "broken-json", "json-array"],
)
def test_a_body_that_is_not_a_json_object_is_400(
    standin: PortkeyStandIn, body: bytes, content_type: str | None, says: str
) -> None:
    headers = HEADERS if content_type is None else {**HEADERS, "Content-Type": content_type}
    response = requests.post(run_url(standin), data=body, headers=headers, timeout=5)
    assert says in assert_openai_error(response, 400)


def test_an_unknown_body_field_is_400(standin: PortkeyStandIn) -> None:
    response = modify(standin, {"meta_data": {"team": "search"}})
    assert "meta_data" in assert_openai_error(response, 400, param="meta_data")


# -- metadata limits -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("metadata", "param"),
    [
        ("team=search", "metadata"),
        ({f"k{n}": "v" for n in range(17)}, "metadata"),
        ({"k" * 65: "v"}, "metadata"),
        ({"": "v"}, "metadata"),
        ({"team": "v" * 513}, "metadata.team"),
        ({"count": 3}, "metadata.count"),
    ],
    ids=["not-an-object", "17-pairs", "65-char-key", "empty-key", "513-char-value", "not-a-string"],
)
def test_metadata_over_the_limits_is_400_naming_the_field(
    standin: PortkeyStandIn, metadata: Any, param: str
) -> None:
    assert_openai_error(modify(standin, {"metadata": metadata}), 400, param=param)


def test_metadata_at_the_limits_is_accepted(standin: PortkeyStandIn) -> None:
    metadata = {f"{n:02d}" + "k" * 62: "v" * 512 for n in range(16)}
    response = modify(standin, {"metadata": metadata})
    assert response.status_code == 200
    assert response.json()["metadata"] == metadata


# -- routes and ids --------------------------------------------------------------------------------


@pytest.mark.parametrize("run_id", ["run.abc", "r" * 129, "run%20abc"])
def test_a_malformed_run_id_is_404(standin: PortkeyStandIn, run_id: str) -> None:
    assert_openai_error(modify(standin, {"metadata": {}}, run_id=run_id), 404)


def test_an_unknown_path_is_404(standin: PortkeyStandIn) -> None:
    response = requests.get(f"{standin.base_url}/threads/{THREAD_ID}/messages", headers=HEADERS, timeout=5)
    assert "Invalid URL" in assert_openai_error(response, 404)


def test_a_wrong_method_on_a_run_is_405(standin: PortkeyStandIn) -> None:
    response = requests.delete(run_url(standin), headers=HEADERS, timeout=5)
    assert_openai_error(response, 405)
    assert response.headers["Allow"] == "GET, POST"


def test_with_a_runs_list_other_runs_are_404() -> None:
    # given
    with PortkeyStandIn(runs=[make_run(THREAD_ID, "run_known")]) as standin:
        # when
        known = modify(standin, {"metadata": {"a": "b"}}, run_id="run_known")
        unknown = modify(standin, {"metadata": {"a": "b"}}, run_id="run_x")
    # then
    assert known.status_code == 200
    assert assert_openai_error(unknown, 404) == "No run found with id 'run_x'."


def test_the_command_line_serves_only_the_runs_file_and_stops_on_sigterm(tmp_path: Path) -> None:
    # given
    runs_file = tmp_path / "runs.json"
    runs_file.write_text(json.dumps([make_run(THREAD_ID, "run_known")]))
    command = [sys.executable, "-m", "local.portkey", "--port", "0", "--runs", str(runs_file)]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as process:  # noqa: S603
        assert process.stdout is not None
        base_url = process.stdout.readline().strip()
        # when
        known = requests.get(f"{base_url}/threads/{THREAD_ID}/runs/run_known", headers=HEADERS, timeout=5)
        unknown = requests.get(f"{base_url}/threads/{THREAD_ID}/runs/run_x", headers=HEADERS, timeout=5)
        process.send_signal(signal.SIGTERM)
        _, log = process.communicate(timeout=10)
    # then
    assert base_url.startswith("http://127.0.0.1:")
    assert base_url.endswith("/v1")
    assert (known.status_code, unknown.status_code) == (200, 404)
    assert process.returncode == 0, log
    assert f"GET /v1/threads/{THREAD_ID}/runs/run_x -> 404" in log
    assert "pk-test" not in log
    assert "vk-test" not in log


# -- faults ----------------------------------------------------------------------------------------


def test_an_injected_429_carries_retry_after_then_the_server_recovers(standin: PortkeyStandIn) -> None:
    # given
    standin.inject(Fault.error(429, headers={"Retry-After": "2", "retry-after-ms": "2000"}))
    # when
    throttled = modify(standin, {"metadata": {"a": "b"}})
    after = modify(standin, {"metadata": {"a": "b"}})
    # then
    assert_openai_error(throttled, 429)
    assert throttled.json()["error"]["code"] == "rate_limit_exceeded"
    assert (throttled.headers["Retry-After"], throttled.headers["retry-after-ms"]) == ("2", "2000")
    assert after.status_code == 200
    assert standin.pending_faults == 0


def test_injected_faults_are_used_in_order_for_the_next_requests(standin: PortkeyStandIn) -> None:
    standin.inject(Fault.error(503), times=2)
    standin.inject(Fault.error(500))
    statuses = [modify(standin, {"metadata": {}}).status_code for _ in range(4)]
    assert statuses == [503, 503, 500, 200]


def test_a_malformed_body_fault_answers_200_with_invalid_json(standin: PortkeyStandIn) -> None:
    standin.inject(Fault.malformed_body())
    response = modify(standin, {"metadata": {"a": "b"}})
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    with pytest.raises(requests.JSONDecodeError):
        response.json()


def test_a_wrong_run_fault_answers_another_run(standin: PortkeyStandIn) -> None:
    standin.inject(Fault.wrong_run())
    run = modify(standin, {"metadata": {"a": "b"}}).json()
    assert run["object"] == "thread.run"
    assert run["id"] != RUN_ID


def test_a_reset_fault_drops_the_connection_without_an_answer(standin: PortkeyStandIn) -> None:
    # given
    standin.inject(Fault.reset())
    # when / then
    with pytest.raises(requests.ConnectionError):
        modify(standin, {"metadata": {"a": "b"}})
    assert modify(standin, {"metadata": {"a": "b"}}).status_code == 200


def test_a_slow_body_fault_stalls_after_the_headers(standin: PortkeyStandIn) -> None:
    # given a body that stalls far longer than the client's read timeout
    standin.inject(Fault.slow_body(10_000))
    # when
    response = requests.get(run_url(standin), headers=HEADERS, timeout=(5, 0.1), stream=True)
    # then the status arrived, the body did not
    assert response.status_code == 200
    with pytest.raises(requests.ConnectionError):
        _ = response.content


def test_latency_delays_every_answer(standin: PortkeyStandIn) -> None:
    standin.latency_ms = 10_000
    with pytest.raises(requests.Timeout):
        requests.get(run_url(standin), headers=HEADERS, timeout=(5, 0.1))


def test_random_failures_repeat_for_the_same_seed() -> None:
    def statuses() -> list[int]:
        with PortkeyStandIn(fail_rate=0.5, fail_status=502, seed=7) as standin:
            return [modify(standin, {"metadata": {}}).status_code for _ in range(12)]

    first = statuses()
    assert first == statuses()
    assert set(first) == {200, 502}


# -- compression -----------------------------------------------------------------------------------


def test_gzip_answers_are_compressed_for_a_client_that_accepts_gzip(standin: PortkeyStandIn) -> None:
    # given a stand-in told to compress, as a CDN-fronted gateway does
    standin.gzip_answers = True
    # when a client accepting gzip modifies a run, and asks for one that is not there
    with requests.Session() as session:
        session.headers["Accept-Encoding"] = "gzip"
        found = modify(standin, {"metadata": {"a": "b"}}, session=session, run_id="run_gz")
        missing = session.post(
            run_url(standin, thread_id="thread bad"), json={"metadata": {}}, headers=HEADERS, timeout=5
        )
    # then both answers were sent compressed, and decode to the usual ones
    assert found.headers["Content-Encoding"] == "gzip"
    assert found.json()["metadata"] == {"a": "b"}
    assert missing.headers["Content-Encoding"] == "gzip"
    assert_openai_error(missing, 404)


@pytest.mark.parametrize("accepted", ["identity", "gzip;q=0", "deflate"])
def test_gzip_answers_stay_plain_for_a_client_that_does_not_accept_gzip(
    standin: PortkeyStandIn, accepted: str
) -> None:
    standin.gzip_answers = True

    response = modify(standin, {"metadata": {}}, headers={**HEADERS, "Accept-Encoding": accepted})

    assert "Content-Encoding" not in response.headers
    assert response.json()["object"] == "thread.run"


# -- connections and records -----------------------------------------------------------------------


def test_a_session_reuses_one_connection(standin: PortkeyStandIn) -> None:
    with requests.Session() as session:
        for _ in range(5):
            assert modify(standin, {"metadata": {}}, session=session).ok
    assert standin.connections_opened == 1


def test_requests_without_a_session_open_a_connection_each(standin: PortkeyStandIn) -> None:
    for _ in range(3):
        modify(standin, {"metadata": {}})
    assert standin.connections_opened == 3


@pytest.mark.timeout(10)
def test_stop_ends_idle_keep_alive_connections() -> None:
    # given a session holding an idle keep-alive connection
    standin = PortkeyStandIn()
    standin.start()
    url = run_url(standin)
    with requests.Session() as session:
        assert session.get(url, headers=HEADERS, timeout=5).ok
        # when
        standin.stop()  # would hang if the idle connection kept its handler alive
        # then the port is closed
        with pytest.raises(requests.ConnectionError):
            session.get(url, headers=HEADERS, timeout=5)


def test_reset_state_undoes_what_earlier_tests_set(standin: PortkeyStandIn) -> None:
    # given a shared server left with a fault, a key set, latency and records
    requests.get(f"{standin.base_url}/models", timeout=5)
    standin.inject(Fault.reset(), times=3)
    standin.accept_api_keys({"pk-other"})
    standin.latency_ms = 10_000
    standin.gzip_answers = True
    # when
    standin.reset_state()
    # then
    response = modify(standin, {"metadata": {}})
    assert response.status_code == 200
    assert "Content-Encoding" not in response.headers
    assert (standin.pending_faults, len(standin.requests), standin.connections_opened) == (0, 1, 1)


def test_requests_are_recorded_without_showing_their_headers(standin: PortkeyStandIn) -> None:
    modify(standin, {"metadata": {"a": "b"}})
    [recorded] = standin.requests
    assert (recorded.method, recorded.path) == ("POST", f"/v1/threads/{THREAD_ID}/runs/{RUN_ID}")
    assert recorded.json == {"metadata": {"a": "b"}}
    assert recorded.headers["x-portkey-api-key"] == "pk-test"
    assert "pk-test" not in repr(recorded)


def test_metadata_changes_list_only_the_modifications_applied_in_order(standin: PortkeyStandIn) -> None:
    # Given three Modify runs applied (one answered for another run), one refused by an injected 503
    # and one without a key
    modify(standin, {"metadata": {"n": "1"}})
    standin.inject(Fault.error(503))
    modify(standin, {"metadata": {"n": "2"}})
    modify(standin, {"metadata": {"n": "3"}}, headers=without("x-portkey-api-key"))
    modify(standin, {"metadata": {"n": "4"}}, run_id="run_other")
    standin.inject(Fault.wrong_run())
    modify(standin, {"metadata": {"n": "5"}})
    # Then the changes are the three applied, in order; and clearing the records forgets them
    assert standin.metadata_changes == [
        (THREAD_ID, RUN_ID, {"n": "1"}),
        (THREAD_ID, "run_other", {"n": "4"}),
        (THREAD_ID, RUN_ID, {"n": "5"}),
    ]
    standin.clear_requests()
    assert standin.metadata_changes == []


# -- openai-python as a real client ----------------------------------------------------------------


def openai_client(standin: PortkeyStandIn) -> openai.OpenAI:
    return openai.OpenAI(
        api_key="pk-test",
        base_url=standin.base_url,
        default_headers={"x-portkey-api-key": "pk-test", "x-portkey-virtual-key": "vk-test"},
        max_retries=0,
    )


@pytest.mark.filterwarnings(ASSISTANTS_DEPRECATED)
def test_openai_python_updates_and_retrieves_a_run(standin: PortkeyStandIn) -> None:
    with openai_client(standin) as client:
        # when
        updated = client.beta.threads.runs.update(RUN_ID, thread_id=THREAD_ID, metadata={"team": "search"})
        retrieved = client.beta.threads.runs.retrieve(RUN_ID, thread_id=THREAD_ID)
    # then
    assert (updated.id, updated.thread_id, updated.metadata) == (RUN_ID, THREAD_ID, {"team": "search"})
    assert retrieved.metadata == {"team": "search"}
    sent = standin.requests[0].headers
    assert sent["authorization"] == "Bearer pk-test"
    assert sent["openai-beta"] == "assistants=v2"


@pytest.mark.filterwarnings(ASSISTANTS_DEPRECATED)
def test_openai_python_raises_not_found_for_an_unknown_run() -> None:
    with (
        PortkeyStandIn(runs=[]) as standin,
        openai_client(standin) as client,
        pytest.raises(openai.NotFoundError) as raised,
    ):
        client.beta.threads.runs.update("run_gone", thread_id=THREAD_ID, metadata={"a": "b"})
    assert raised.value.status_code == 404
    assert "run_gone" in raised.value.message
