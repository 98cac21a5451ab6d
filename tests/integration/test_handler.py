"""The real handler, fed by Lambda's event source mapping, against moto's server and the stand-in."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from local.aws import DEFAULT_KEYS, TENANT_KEYS, put_keys
from local.poller import QueuePoller
from local.portkey import Fault, PortkeyStandIn
from local.stack import EmbeddedStack
from tests.conftest import Configure
from tests.support import a_request, attribute, one_event

SCHEMAS = Path(__file__).resolve().parents[2] / "events" / "schemas"


def _validator(name: str) -> Draft202012Validator:
    return Draft202012Validator(json.loads((SCHEMAS / name).read_text()))


def test_a_request_is_tagged_and_published(stack: EmbeddedStack, lambda_poller: QueuePoller) -> None:
    # Given a tag-run request on the queue
    message_id = stack.send(a_request(metadata={"team": "search", "priority": "high"}))
    # When Lambda's event source mapping feeds it to the function
    outcome = lambda_poller.poll_once()
    # Then the message is deleted and a Run Tagged event carries the run with its new metadata
    assert (outcome.received, outcome.deleted, outcome.failed) == (1, 1, [])
    event = one_event(stack.published(), "Run Tagged")
    assert event["source"] == "run-tagger"
    assert event["detail"]["run"]["id"] == "run_it1"
    assert event["detail"]["run"]["metadata"] == {"team": "search", "priority": "high"}
    assert event["detail"]["request"] == {
        "thread_id": "thread_it1",
        "run_id": "run_it1",
        "metadata": {"team": "search", "priority": "high"},
        "request_id": None,
        "tenant": None,
    }
    assert event["detail"]["truncated"] == []
    assert list(_validator("run-tagged.json").iter_errors(event)) == []
    assert stack.dead_letters() == []
    assert stack.queue_depth() == 0
    assert message_id


def test_portkey_gets_the_modify_run_call_of_the_contract(
    stack: EmbeddedStack, lambda_poller: QueuePoller, portkey: PortkeyStandIn
) -> None:
    # Given a request
    stack.send(a_request())
    # When it is processed
    lambda_poller.poll_once()
    # Then Portkey received one POST with the headers of §1.2 and the keys of the default secret
    [call] = portkey.requests
    assert (call.method, call.path) == ("POST", "/v1/threads/thread_it1/runs/run_it1")
    assert call.json == {"metadata": {"team": "search"}}
    assert call.headers["x-portkey-api-key"] == DEFAULT_KEYS["api_key"]
    assert call.headers["x-portkey-virtual-key"] == DEFAULT_KEYS["virtual_key"]
    assert call.headers["openai-beta"] == "assistants=v2"
    assert call.headers["content-type"] == "application/json"


def test_an_eventbridge_routed_request_is_tagged(stack: EmbeddedStack, lambda_poller: QueuePoller) -> None:
    # Given a producer that sends the request as a `Tag Run Requested` event
    stack.send_via_eventbridge(a_request(run_id="run_from_bus"))
    # When the bus rule has put it on the queue and the function processes it
    outcome = lambda_poller.poll_once()
    # Then the run is tagged
    assert outcome.failed == []
    assert one_event(stack.published(), "Run Tagged")["detail"]["run"]["id"] == "run_from_bus"


def test_an_sns_routed_request_is_tagged(stack: EmbeddedStack, lambda_poller: QueuePoller) -> None:
    # Given a producer that publishes the request to the SNS topic the queue is subscribed to
    stack.send_via_sns(a_request(run_id="run_from_topic", request_id="req-sns-1"))
    # When the function processes the notification
    outcome = lambda_poller.poll_once()
    # Then the run is tagged and the event shows the request as sent
    assert outcome.failed == []
    event = one_event(stack.published(), "Run Tagged")
    assert event["detail"]["request"]["request_id"] == "req-sns-1"


BAD_BODIES = {
    "not JSON": ("{not json", "not valid JSON"),
    "not an object": ('["thread_it1", "run_it1"]', "must be a JSON object"),
    "unknown field": (json.dumps({**a_request(), "meta_data": {}}), "meta_data: unknown field"),
    "slash in id": (json.dumps(a_request(thread_id="thread/1")), "thread_id"),
    "dot-dot id": (json.dumps(a_request(run_id="..")), "run_id"),
    "encoded slash": (json.dumps(a_request(run_id="run%2F1")), "run_id"),
    "space in id": (json.dumps(a_request(run_id="run 1")), "run_id"),
    "id too long": (json.dumps(a_request(run_id="r" * 129)), "run_id"),
    "17 pairs": (json.dumps(a_request(metadata={f"k{i}": "v" for i in range(17)})), "at most 16 pairs"),
    "key too long": (json.dumps(a_request(metadata={"k" * 65: "v"})), "must be 1-64 characters"),
    "value too long": (json.dumps(a_request(metadata={"k": "v" * 513})), "at most 512 characters"),
    "number value": (json.dumps(a_request(metadata={"k": 1})), "must be a string"),
    "unknown tenant": (json.dumps(a_request(tenant="globex")), "unknown tenant"),
}


@pytest.mark.parametrize(("body", "expected"), BAD_BODIES.values(), ids=BAD_BODIES.keys())
def test_a_bad_request_is_dead_lettered_with_its_reason(
    stack: EmbeddedStack, lambda_poller: QueuePoller, portkey: PortkeyStandIn, body: str, expected: str
) -> None:
    # Given a bad request beside a good one
    bad_id = stack.send(body)
    stack.send(a_request(run_id="run_good"))
    # When the batch is processed
    outcome = lambda_poller.poll_once()
    # Then both messages are settled: the good one tagged, the bad one in the DLQ, unchanged, with its reason
    assert (outcome.received, outcome.failed) == (2, [])
    [dead] = stack.dead_letters()
    assert dead["Body"] == body
    assert attribute(dead, "error_code") == "invalid_request"
    assert expected in attribute(dead, "error_message")
    events = stack.published()
    failed = one_event(events, "Run Tag Failed")
    assert failed["detail"]["message_id"] == bad_id
    assert failed["detail"]["error"]["code"] == "invalid_request"
    assert failed["detail"]["error"]["retryable"] is False
    assert list(_validator("run-tag-failed.json").iter_errors(failed)) == []
    assert one_event(events, "Run Tagged")["detail"]["run"]["id"] == "run_good"
    # and Portkey was never called for the bad one
    assert [call.path for call in portkey.requests] == ["/v1/threads/thread_it1/runs/run_good"]


@pytest.mark.parametrize(
    ("status", "code"), [(404, "run_not_found"), (400, "portkey_rejected"), (422, "portkey_rejected")]
)
def test_a_portkey_refusal_is_dead_lettered_with_portkeys_message(
    stack: EmbeddedStack, lambda_poller: QueuePoller, portkey: PortkeyStandIn, status: int, code: str
) -> None:
    # Given Portkey refuses the next call
    portkey.inject(Fault.error(status, body={"error": {"message": f"refused with {status}", "type": "x"}}))
    stack.send(a_request())
    # When the request is processed
    outcome = lambda_poller.poll_once()
    # Then it is settled as a permanent failure with Portkey's message and status, after one call
    assert outcome.failed == []
    [dead] = stack.dead_letters()
    assert attribute(dead, "error_code") == code
    assert attribute(dead, "error_message") == f"refused with {status}"
    error = one_event(stack.published(), "Run Tag Failed")["detail"]["error"]
    assert error == {"code": code, "message": f"refused with {status}", "status": status, "retryable": False}
    assert len(portkey.requests) == 1


def test_a_run_portkey_does_not_know_is_run_not_found(stack: EmbeddedStack, configure: Configure) -> None:
    # Given a Portkey where no run exists (as for runs OpenAI itself served)
    with PortkeyStandIn(runs=[]) as empty:
        app = configure(PORTKEY_BASE_URL=empty.base_url)
        stack.send(a_request(run_id="run_deleted"))
        # When a request for a run is processed
        stack.poller(app.lambda_handler).poll_once()
    # Then it is dead-lettered as run_not_found with the stand-in's own message
    [dead] = stack.dead_letters()
    assert attribute(dead, "error_code") == "run_not_found"
    assert "run_deleted" in attribute(dead, "error_message")


def test_a_rotated_key_heals_itself(
    stack: EmbeddedStack, lambda_poller: QueuePoller, portkey: PortkeyStandIn
) -> None:
    # Given a warm function that has cached the old keys
    stack.send(a_request(run_id="run_before"))
    lambda_poller.poll_once()
    stack.published()
    # and a rotation: the secret holds a new key, and Portkey accepts only that one
    new_keys = {**DEFAULT_KEYS, "api_key": "pk-rotated-0001"}
    put_keys(stack.aws, stack.resources.secret_id, new_keys)
    portkey.accept_api_keys({"pk-rotated-0001"})
    portkey.clear_requests()
    # When the next request is processed
    stack.send(a_request(run_id="run_after"))
    outcome = lambda_poller.poll_once()
    # Then the 401 made the function refetch the secret, and the retry with the new key succeeded
    assert outcome.failed == []
    assert one_event(stack.published(), "Run Tagged")["detail"]["run"]["id"] == "run_after"
    assert [call.headers["x-portkey-api-key"] for call in portkey.requests] == [
        DEFAULT_KEYS["api_key"],
        "pk-rotated-0001",
    ]


def test_a_key_portkey_keeps_refusing_is_unauthorized(
    stack: EmbeddedStack, lambda_poller: QueuePoller, portkey: PortkeyStandIn
) -> None:
    # Given Portkey accepts no key the secret holds
    portkey.accept_api_keys({"pk-someone-else"})
    stack.send(a_request())
    # When the request is processed
    lambda_poller.poll_once()
    # Then after one refetch and one retry it is dead-lettered as unauthorized, naming no key
    [dead] = stack.dead_letters()
    assert attribute(dead, "error_code") == "unauthorized"
    assert DEFAULT_KEYS["api_key"] not in json.dumps(dead)
    assert len(portkey.requests) == 2


def test_a_tenant_request_uses_the_tenants_keys(
    stack: EmbeddedStack, lambda_poller: QueuePoller, portkey: PortkeyStandIn
) -> None:
    # Given a request for tenant acme, whose keys live under the tenant prefix
    stack.send(a_request(tenant="acme"))
    # When it is processed
    lambda_poller.poll_once()
    # Then Portkey was called with acme's keys and the event names the tenant
    assert [call.headers["x-portkey-api-key"] for call in portkey.requests] == [TENANT_KEYS["api_key"]]
    assert one_event(stack.published(), "Run Tagged")["detail"]["request"]["tenant"] == "acme"


def test_a_malformed_portkey_answer_is_invalid_response(
    stack: EmbeddedStack, lambda_poller: QueuePoller, portkey: PortkeyStandIn
) -> None:
    # Given Portkey answers a body that is not JSON
    portkey.inject(Fault.malformed_body())
    stack.send(a_request())
    # When the request is processed
    outcome = lambda_poller.poll_once()
    # Then the batch goes on and the message is dead-lettered as invalid_response
    assert outcome.error is None
    [dead] = stack.dead_letters()
    assert attribute(dead, "error_code") == "invalid_response"


def test_the_wrong_run_in_the_answer_is_invalid_response(
    stack: EmbeddedStack, lambda_poller: QueuePoller, portkey: PortkeyStandIn
) -> None:
    # Given Portkey answers with another run than the one asked for
    portkey.inject(Fault.wrong_run())
    stack.send(a_request())
    # When the request is processed
    lambda_poller.poll_once()
    # Then it is dead-lettered as invalid_response
    [dead] = stack.dead_letters()
    assert attribute(dead, "error_code") == "invalid_response"
    assert "not run 'run_it1'" in attribute(dead, "error_message")


def test_portkey_down_leaves_the_message_on_the_queue(
    stack: EmbeddedStack, lambda_poller: QueuePoller, portkey: PortkeyStandIn, configure: Configure
) -> None:
    # Given Portkey answers 503 to every attempt of this invocation
    configure(PORTKEY_MAX_ATTEMPTS="2")
    portkey.inject(Fault.error(503, headers={"retry-after-ms": "10"}), times=2)
    message_id = stack.send(a_request())
    # When the request is processed
    outcome = lambda_poller.poll_once()
    # Then the item is reported failed and comes back: no event, nothing in the DLQ
    assert outcome.failed == [message_id]
    assert stack.published() == []
    assert stack.dead_letters() == []
    assert stack.queue_depth() == 1
    # and the next delivery succeeds once Portkey is back
    assert lambda_poller.poll_once().failed == []
    assert one_event(stack.published(), "Run Tagged")["detail"]["run"]["id"] == "run_it1"


def test_a_mixed_batch_settles_every_message(
    stack: EmbeddedStack, lambda_poller: QueuePoller, portkey: PortkeyStandIn
) -> None:
    # Given a batch with a good request, a bad one, and one Portkey refuses
    portkey.inject(Fault.error(404))
    stack.send(a_request(run_id="run_missing"))
    stack.send("{oops")
    stack.send(a_request(run_id="run_ok"))
    # When the batch is processed
    outcome = lambda_poller.poll_once()
    # Then nothing is retried, one run is tagged and two failures are reported and dead-lettered
    assert (outcome.received, outcome.deleted, outcome.failed) == (3, 3, [])
    events = stack.published()
    detail_types = sorted(event["detail-type"] for event in events)
    assert detail_types == ["Run Tag Failed", "Run Tag Failed", "Run Tagged"]
    codes = sorted(attribute(dead, "error_code") for dead in stack.dead_letters())
    assert codes == ["invalid_request", "run_not_found"]


def test_requests_for_one_run_are_applied_in_arrival_order(
    stack: EmbeddedStack, lambda_poller: QueuePoller, portkey: PortkeyStandIn
) -> None:
    # Given three requests for the same run, interleaved with others, in one batch
    for step in range(3):
        stack.send(a_request(metadata={"step": str(step)}))
        stack.send(a_request(run_id=f"run_other{step}"))
    # When the batch is processed concurrently
    outcome = lambda_poller.poll_once()
    # Then Portkey saw the run's three calls in arrival order, and the run ends with the last metadata
    assert outcome.failed == []
    calls = [call.json["metadata"]["step"] for call in portkey.requests if call.path.endswith("/run_it1")]
    assert calls == ["0", "1", "2"]
    stored = portkey.get_run("thread_it1", "run_it1")
    assert stored is not None
    assert stored["metadata"] == {"step": "2"}


def test_no_key_value_reaches_the_output(
    stack: EmbeddedStack,
    lambda_poller: QueuePoller,
    portkey: PortkeyStandIn,
    capfd: pytest.CaptureFixture[str],
    function_log: io.StringIO,
) -> None:
    # Given a mix of outcomes (DEBUG and event logging, read at import, are tested in test_as_deployed)
    portkey.accept_api_keys({"pk-someone-else"})
    stack.send(a_request())
    stack.send("{bad")
    # When the batch is processed
    lambda_poller.poll_once()
    # Then no key value appears in anything printed, published or dead-lettered
    printed = "".join(capfd.readouterr()) + function_log.getvalue()
    published = json.dumps(stack.published()) + json.dumps(stack.dead_letters())
    assert "unauthorized" in printed  # the outcomes were logged
    for value in DEFAULT_KEYS.values():
        assert value not in printed
        assert value not in published
