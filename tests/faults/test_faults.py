"""One test per row of DESIGN §2 and per injected fault, asserting where every message ends:
published once, in the DLQ with its reason, or back on the queue."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Mapping
from typing import Any

import pytest

from local.aws import DEFAULT_KEYS, create_stack, put_keys
from local.poller import LocalLambdaContext, QueuePoller
from local.portkey import Fault, PortkeyStandIn
from local.runs import make_run
from local.stack import EmbeddedStack
from tests.conftest import Configure
from tests.support import a_request, attribute, one_event


def _settled_once(stack: EmbeddedStack, run_id: str = "run_it1") -> None:
    """Then: exactly one Run Tagged event for the run, nothing in the DLQ, nothing left on the queue."""
    assert one_event(stack.published(), "Run Tagged")["detail"]["run"]["id"] == run_id
    assert stack.dead_letters() == []
    assert stack.queue_depth() == 0


def _back_on_queue(stack: EmbeddedStack) -> None:
    """Then: no event, nothing in the DLQ, the message waits for redelivery."""
    assert [e["detail-type"] for e in stack.published() if e["detail-type"] == "Run Tagged"] == []
    assert stack.dead_letters() == []
    assert stack.queue_depth() == 1


def _dead_lettered(stack: EmbeddedStack, code: str) -> dict[str, Any]:
    """Then: the message is in the DLQ with its reason, and a Run Tag Failed event says the same."""
    [dead] = stack.dead_letters()
    assert attribute(dead, "error_code") == code
    assert one_event(stack.published(), "Run Tag Failed")["detail"]["error"]["code"] == code
    assert stack.queue_depth() == 0
    return dead


# --- Portkey answers ---------------------------------------------------------------------------


@pytest.mark.parametrize("status", [408, 409, 429, 500, 502, 503, 504])
def test_a_transient_status_is_retried_in_the_invocation(
    stack: EmbeddedStack, lambda_poller: QueuePoller, portkey: PortkeyStandIn, status: int
) -> None:
    # Given Portkey fails once with a retryable status, asking to wait 20 ms
    portkey.inject(Fault.error(status, headers={"retry-after-ms": "20"}))
    stack.send(a_request())
    # When the request is processed
    outcome = lambda_poller.poll_once()
    # Then the retry inside the same invocation succeeded
    assert outcome.failed == []
    assert len(portkey.requests) == 2
    _settled_once(stack)


def test_a_429_with_retry_after_seconds_is_honoured(
    stack: EmbeddedStack, lambda_poller: QueuePoller, portkey: PortkeyStandIn
) -> None:
    # Given Portkey rate-limits once and asks for no wait (Retry-After: 0)
    portkey.inject(Fault.error(429, headers={"Retry-After": "0"}))
    stack.send(a_request())
    # When the request is processed
    lambda_poller.poll_once()
    # Then it was retried and published once
    assert next(call.fault for call in portkey.requests) == "error"
    _settled_once(stack)


def test_a_retry_after_past_the_deadline_sends_the_message_back(
    stack: EmbeddedStack, portkey: PortkeyStandIn, function: Any
) -> None:
    # Given Portkey asks to wait an hour, longer than the invocation has left
    portkey.inject(Fault.error(429, headers={"Retry-After": "3600"}))
    stack.send(a_request())
    # When the request is processed
    outcome = stack.poller(function.lambda_handler, timeout_seconds=10).poll_once()
    # Then the function does not wait: the item fails at once and comes back
    assert len(outcome.failed) == 1
    assert len(portkey.requests) == 1
    _back_on_queue(stack)


def test_the_next_invocation_is_not_held_up_by_an_earlier_ones_429(
    stack: EmbeddedStack, portkey: PortkeyStandIn, function: Any
) -> None:
    # Given an invocation whose request met a 429 asking to wait an hour, and went back to the queue
    portkey.inject(Fault.error(429, headers={"Retry-After": "3600"}))
    stack.send(a_request(run_id="run_first"))
    poller = stack.poller(function.lambda_handler, timeout_seconds=10)
    assert len(poller.poll_once().failed) == 1
    # When the warm function's next invocation gets another request
    stack.send(a_request(run_id="run_next"))
    outcome = poller.poll_once()
    # Then that invocation's requests (the first one's redelivery too) went to Portkey at once: tagged
    assert outcome.failed == []
    tagged = [e["detail"]["run"]["id"] for e in stack.published() if e["detail-type"] == "Run Tagged"]
    assert "run_next" in tagged


def test_a_reset_connection_is_retried(
    stack: EmbeddedStack, lambda_poller: QueuePoller, portkey: PortkeyStandIn
) -> None:
    # Given Portkey's connection is reset once without an answer
    portkey.inject(Fault.reset())
    stack.send(a_request())
    # When the request is processed
    lambda_poller.poll_once()
    # Then the retry succeeded
    _settled_once(stack)


def test_a_slow_body_past_the_timeout_is_retried(
    stack: EmbeddedStack, portkey: PortkeyStandIn, configure: Configure
) -> None:
    # Given a per-attempt timeout of 0.3 s and an answer whose body stalls for 1.5 s once
    app = configure(PORTKEY_TIMEOUT_SECONDS="0.3")
    portkey.inject(Fault.slow_body(1500))
    stack.send(a_request())
    # When the request is processed
    outcome = stack.poller(app.lambda_handler).poll_once()
    # Then the stalled attempt timed out and the next one succeeded
    assert outcome.failed == []
    _settled_once(stack)


def test_portkey_unreachable_sends_the_message_back(stack: EmbeddedStack, configure: Configure) -> None:
    # Given nothing listens where Portkey should be
    with PortkeyStandIn() as gone:
        url = gone.base_url
    app = configure(PORTKEY_BASE_URL=url, PORTKEY_MAX_ATTEMPTS="2")
    stack.send(a_request())
    # When the request is processed
    outcome = stack.poller(app.lambda_handler).poll_once()
    # Then the item fails and comes back
    assert len(outcome.failed) == 1
    _back_on_queue(stack)


def test_a_transient_failure_on_the_last_delivery_is_dead_lettered_with_its_reason(
    stack: EmbeddedStack, portkey: PortkeyStandIn, configure: Configure
) -> None:
    # Given Portkey answers 503 to every attempt, and the queue's redrive policy allows 3 receives
    app = configure(PORTKEY_MAX_ATTEMPTS="1")
    portkey.inject(Fault.error(503), times=3)
    stack.send(a_request())
    poller = stack.poller(app.lambda_handler)
    # When the message is delivered twice, then a third and last time
    early = [poller.poll_once(), poller.poll_once()]
    assert [len(outcome.failed) for outcome in early] == [1, 1]
    assert stack.queue_depth() == 1
    last = poller.poll_once()
    # Then the last delivery leaves it in the DLQ with the reason SQS's own redrive would have dropped
    assert last.failed == []
    [dead] = stack.dead_letters()
    assert attribute(dead, "error_code") == "portkey_unavailable"
    assert attribute(dead, "error_status") == "503"
    assert json.loads(dead["Body"])["run_id"] == "run_it1"
    assert stack.queue_depth() == 0
    # and no Run Tag Failed is published: that event is for the failures a retry cannot heal
    assert [event["detail-type"] for event in stack.published()] == []


def test_a_dlq_refusing_the_last_delivery_leaves_the_message_to_sqss_redrive(
    stack: EmbeddedStack, portkey: PortkeyStandIn, configure: Configure
) -> None:
    # Given a first delivery that is also the last, a failing Portkey, and a DLQ that does not exist
    app = configure(
        MAX_RECEIVE_COUNT="1", PORTKEY_MAX_ATTEMPTS="1", DEAD_LETTER_QUEUE_URL=stack.resources.dlq_url + "-x"
    )
    portkey.inject(Fault.error(503))
    stack.send(a_request())
    # When it is delivered
    outcome = stack.poller(app.lambda_handler).poll_once()
    # Then the item fails, so the message is not deleted: SQS moves it by its redrive policy
    assert len(outcome.failed) == 1
    assert stack.dead_letters() == []
    assert stack.queue_depth() == 1


def test_a_permanent_failure_whose_event_fails_on_the_last_delivery_keeps_its_own_reason(
    stack: EmbeddedStack, configure: Configure
) -> None:
    # Given a last delivery of a bad body, and a bus that refuses its Run Tag Failed event
    app = configure(MAX_RECEIVE_COUNT="1", EVENT_BUS_NAME="run-tagger-missing-bus")
    stack.send("{not json")
    # When it is delivered
    outcome = stack.poller(app.lambda_handler).poll_once()
    # Then it waits in the DLQ as the invalid request it is, not as the publishing failure that followed
    assert outcome.failed == []
    [dead] = stack.dead_letters()
    assert attribute(dead, "error_code") == "invalid_request"
    assert attribute(dead, "error_message").endswith("(its Run Tag Failed event was not published)")
    assert dead["Body"] == "{not json"


@pytest.mark.parametrize(("timeout_seconds", "dead_lettered"), [(2.5, True), (0.9, False)])
def test_a_last_delivery_out_of_time_is_dead_lettered_only_with_a_second_to_spare(
    stack: EmbeddedStack, configure: Configure, timeout_seconds: float, dead_lettered: bool
) -> None:
    # Given a last delivery in an invocation with too little time to start the request
    app = configure(MAX_RECEIVE_COUNT="1")
    stack.send(a_request())
    # When the batch arrives with 2.5 s left (a second to spare after the reserve) or 0.9 s
    outcome = stack.poller(app.lambda_handler, timeout_seconds=timeout_seconds).poll_once()
    # Then with time to spare it is dead-lettered as deadline_exceeded; without, SQS's redrive moves it
    dead = stack.dead_letters()
    if dead_lettered:
        assert outcome.failed == []
        assert [attribute(message, "error_code") for message in dead] == ["deadline_exceeded"]
    else:
        assert len(outcome.failed) == 1
        assert dead == []
        assert stack.queue_depth() == 1


def test_a_slow_portkey_past_the_deadline_sends_the_message_back(
    stack: EmbeddedStack, portkey: PortkeyStandIn, function: Any
) -> None:
    # Given a function with 3.5 s to run (1.5 s for Portkey after the publishing reserve) and a 3 s Portkey
    portkey.inject(Fault.latency(3000))
    stack.send(a_request())
    # When the request is processed
    outcome = stack.poller(function.lambda_handler, timeout_seconds=3.5).poll_once()
    # Then the attempt is cut at the deadline, the invocation ends in time, and the message comes back
    assert outcome.error is None
    assert len(outcome.failed) == 1
    _back_on_queue(stack)


def test_too_little_time_left_means_the_request_is_not_started(
    stack: EmbeddedStack, portkey: PortkeyStandIn, function: Any
) -> None:
    # Given an invocation with 0.8 s left beyond the 2 s kept for publishing: enough for Portkey's client to
    # start an attempt (0.5 s), not for the pipeline to start a request (1 s)
    stack.send(a_request())
    # When the batch arrives
    outcome = stack.poller(function.lambda_handler, timeout_seconds=2.8).poll_once()
    # Then Portkey is not called and the message comes back
    assert len(outcome.failed) == 1
    assert portkey.requests == []
    _back_on_queue(stack)


@pytest.mark.parametrize("status", [400, 405, 413, 422, 446])
def test_a_refusal_is_portkey_rejected(
    stack: EmbeddedStack, lambda_poller: QueuePoller, portkey: PortkeyStandIn, status: int
) -> None:
    # Given Portkey refuses with a 4xx that retrying cannot change
    portkey.inject(Fault.error(status))
    stack.send(a_request())
    # When the request is processed
    lambda_poller.poll_once()
    # Then it is dead-lettered at once, after a single call
    _dead_lettered(stack, "portkey_rejected")
    assert len(portkey.requests) == 1


def test_a_persistent_403_is_unauthorized_after_one_refetch(
    stack: EmbeddedStack, lambda_poller: QueuePoller, portkey: PortkeyStandIn
) -> None:
    # Given Portkey answers 403 twice
    portkey.inject(Fault.error(403), times=2)
    stack.send(a_request())
    # When the request is processed
    lambda_poller.poll_once()
    # Then one refetch and one retry were made, then it is dead-lettered as unauthorized
    _dead_lettered(stack, "unauthorized")
    assert len(portkey.requests) == 2


def test_a_gzip_compressed_answer_is_read_like_a_plain_one(
    stack: EmbeddedStack, lambda_poller: QueuePoller, portkey: PortkeyStandIn
) -> None:
    # Given Portkey compresses its answers, as a CDN-fronted gateway does
    portkey.gzip_answers = True
    stack.send(a_request())
    # When the request is processed
    outcome = lambda_poller.poll_once()
    # Then the run was read through the compression and published once
    assert outcome.failed == []
    _settled_once(stack)


def test_a_gzip_compressed_404_keeps_portkeys_message(
    stack: EmbeddedStack, lambda_poller: QueuePoller, portkey: PortkeyStandIn
) -> None:
    portkey.gzip_answers = True
    stack.send(a_request(thread_id="thread_it1", run_id="run_gone"))
    gone = {"message": "No run found with id 'run_gone'.", "type": "invalid_request_error", "param": None}
    portkey.inject(Fault.error(404, body={"error": {**gone, "code": None}}))

    lambda_poller.poll_once()

    dead = _dead_lettered(stack, "run_not_found")
    assert attribute(dead, "error_message") == "No run found with id 'run_gone'."


def test_a_gzip_answer_that_inflates_past_4_mib_is_an_invalid_response(
    stack: EmbeddedStack, lambda_poller: QueuePoller, portkey: PortkeyStandIn
) -> None:
    # Given a run of more than 4 MiB, which gzip sends in a few kilobytes
    run = make_run("thread_it1", "run_vast")
    run["instructions"] = "x" * (4 * 1024 * 1024)
    portkey.put_run(run)
    portkey.gzip_answers = True
    stack.send(a_request(run_id="run_vast"))
    # When the request is processed
    lambda_poller.poll_once()
    # Then the answer is refused for its size once inflated, not read whole
    dead = _dead_lettered(stack, "invalid_response")
    assert "larger than 4194304 bytes" in attribute(dead, "error_message")


def test_a_huge_run_is_published_truncated_not_dropped(
    stack: EmbeddedStack, portkey: PortkeyStandIn, configure: Configure
) -> None:
    # Given a run whose instructions alone exceed the event limit
    run = make_run("thread_it1", "run_huge")
    run["instructions"] = "x" * 20_000
    portkey.put_run(run)
    app = configure(EVENT_MAX_BYTES="16384")
    stack.send(a_request(run_id="run_huge"))
    # When the request is processed
    stack.poller(app.lambda_handler).poll_once()
    # Then the event is published with instructions emptied, and says so
    event = one_event(stack.published(), "Run Tagged")
    assert event["detail"]["truncated"][0] == "run.instructions"
    assert event["detail"]["run"]["instructions"] is None
    assert len(json.dumps(event["detail"])) <= 16384


# --- keys ----------------------------------------------------------------------------------------


def test_the_default_secret_missing_is_invalid_configuration(
    stack: EmbeddedStack, configure: Configure, portkey: PortkeyStandIn
) -> None:
    # Given the function points at a secret that does not exist
    app = configure(PORTKEY_SECRET_ID="run-tagger/missing")
    stack.send(a_request())
    # When the request is processed
    stack.poller(app.lambda_handler).poll_once()
    # Then it is dead-lettered as invalid_configuration naming the secret, and Portkey is not called
    dead = _dead_lettered(stack, "invalid_configuration")
    assert "run-tagger/missing" in attribute(dead, "error_message")
    assert portkey.requests == []


def test_a_tenant_whose_secret_is_scheduled_for_deletion_is_an_unknown_tenant(
    stack: EmbeddedStack, lambda_poller: QueuePoller, portkey: PortkeyStandIn
) -> None:
    # Given an off-boarded tenant: its keys secret is scheduled for deletion, still in its recovery window
    secret_id = f"{stack.resources.tenant_secret_prefix}acme"
    stack.aws.client("secretsmanager").delete_secret(SecretId=secret_id, RecoveryWindowInDays=7)
    stack.send(a_request(tenant="acme"))
    # When its request is processed
    lambda_poller.poll_once()
    # Then it is dead-lettered at once as an unknown tenant (not retried until redrive); Portkey is not called
    dead = _dead_lettered(stack, "invalid_request")
    assert "scheduled for deletion" in attribute(dead, "error_message")
    assert portkey.requests == []


@pytest.mark.parametrize(
    ("value", "expected"),
    [("not json at all", "is not JSON"), (json.dumps({"virtual_key": "vk-only"}), "api_key is missing")],
)
def test_an_unusable_secret_is_invalid_configuration_without_its_values(
    stack: EmbeddedStack, lambda_poller: QueuePoller, value: str, expected: str
) -> None:
    # Given the keys secret holds something unusable
    stack.aws.client("secretsmanager").put_secret_value(
        SecretId=stack.resources.secret_id, SecretString=value
    )
    stack.send(a_request())
    # When the request is processed
    lambda_poller.poll_once()
    # Then it is dead-lettered naming the secret and the problem, never its value
    dead = _dead_lettered(stack, "invalid_configuration")
    message = attribute(dead, "error_message")
    assert expected in message
    assert stack.resources.secret_id in message
    assert "vk-only" not in message
    assert "not json at all" not in message


def test_a_rotated_secret_missing_its_routing_key_names_no_value(
    stack: EmbeddedStack, lambda_poller: QueuePoller
) -> None:
    # Given a rotation that left out the routing key
    put_keys(stack.aws, stack.resources.secret_id, {"api_key": "pk-new-secret-value"})
    stack.send(a_request())
    # When the request is processed
    lambda_poller.poll_once()
    # Then the reason names the missing routing key, not the api key
    dead = _dead_lettered(stack, "invalid_configuration")
    assert "routing key" in attribute(dead, "error_message")
    assert "pk-new-secret-value" not in json.dumps(dead)


# --- AWS side ------------------------------------------------------------------------------------


def test_eventbridge_refusing_the_event_sends_the_message_back(
    stack: EmbeddedStack, configure: Configure
) -> None:
    # Given the bus the function publishes to does not exist
    app = configure(EVENT_BUS_NAME="run-tagger-missing-bus")
    stack.send(a_request())
    # When the request is processed
    outcome = stack.poller(app.lambda_handler).poll_once()
    # Then the item fails and comes back: nothing is deleted without its event
    assert len(outcome.failed) == 1
    assert stack.dead_letters() == []
    assert stack.queue_depth() == 1


def test_a_dlq_send_failure_sends_the_message_back(stack: EmbeddedStack, configure: Configure) -> None:
    # Given the DLQ the function dead-letters to does not exist
    missing = stack.resources.dlq_url + "-missing"
    app = configure(DEAD_LETTER_QUEUE_URL=missing)
    stack.send("{not json")
    # When the bad request is processed
    outcome = stack.poller(app.lambda_handler).poll_once()
    # Then it is not deleted: it stays on the queue, to reach the DLQ by redrive at worst
    assert len(outcome.failed) == 1
    assert stack.queue_depth() == 1


def test_without_a_dlq_url_a_permanent_failure_fails_the_item(
    stack: EmbeddedStack, configure: Configure
) -> None:
    # Given no DEAD_LETTER_QUEUE_URL
    app = configure(DEAD_LETTER_QUEUE_URL="")
    stack.send("{not json")
    # When the bad request is processed
    outcome = stack.poller(app.lambda_handler).poll_once()
    # Then its failure is published and the item fails, to reach the DLQ by redrive
    assert len(outcome.failed) == 1
    assert one_event(stack.published(), "Run Tag Failed")["detail"]["error"]["code"] == "invalid_request"
    assert stack.queue_depth() == 1


# --- exactly once --------------------------------------------------------------------------------


def test_a_duplicate_send_is_published_once(
    stack: EmbeddedStack, lambda_poller: QueuePoller, portkey: PortkeyStandIn
) -> None:
    # Given the same request sent twice with one request_id, in two batches
    stack.send(a_request(request_id="req-dup-1"))
    lambda_poller.poll_once()
    stack.send(a_request(request_id="req-dup-1"))
    # When the second copy is processed
    outcome = lambda_poller.poll_once()
    # Then it is skipped: one Portkey call, one event, nothing left
    assert outcome.failed == []
    assert len(portkey.requests) == 1
    _settled_once(stack)


def test_duplicates_in_one_batch_are_published_once(
    stack: EmbeddedStack, lambda_poller: QueuePoller, portkey: PortkeyStandIn
) -> None:
    # Given three copies of one request in the same batch
    for _ in range(3):
        stack.send(a_request(request_id="req-dup-2"))
    # When the batch is processed
    outcome = lambda_poller.poll_once()
    # Then all three are settled, with one Portkey call and one event
    assert (outcome.received, outcome.failed) == (3, [])
    assert len(portkey.requests) == 1
    _settled_once(stack)


def test_a_redelivery_after_a_failed_delete_does_not_publish_again(
    stack: EmbeddedStack, portkey: PortkeyStandIn, function: Any
) -> None:
    # Given a batch whose event was published but whose deletion never happened (Lambda redelivers it)
    stack.send(a_request())
    messages = stack.aws.client("sqs").receive_message(
        QueueUrl=stack.resources.queue_url, MaxNumberOfMessages=1
    )
    [message] = messages["Messages"]
    event = {"Records": [_record(stack, message)]}
    assert function.lambda_handler(event, _context()) == {"batchItemFailures": []}
    stack.published()
    # When the same record is delivered again
    answer = function.lambda_handler(event, _context())
    # Then it succeeds without a second Portkey call or a second event
    assert answer == {"batchItemFailures": []}
    assert len(portkey.requests) == 1
    assert stack.published() == []


def test_a_permanent_failure_leaves_no_record_so_a_redrive_is_processed(
    stack: EmbeddedStack, lambda_poller: QueuePoller, portkey: PortkeyStandIn
) -> None:
    # Given a request Portkey refused once (dead-lettered)
    portkey.inject(Fault.error(404))
    stack.send(a_request(request_id="req-redrive"))
    lambda_poller.poll_once()
    [dead] = stack.dead_letters()
    stack.published()
    # When it is redriven after the run exists
    stack.send(dead["Body"])
    lambda_poller.poll_once()
    # Then it is tagged
    _settled_once(stack)


def test_a_fifo_group_stops_at_its_first_transient_failure(
    stack: EmbeddedStack, portkey: PortkeyStandIn, configure: Configure
) -> None:
    # Given a FIFO queue with two groups, processed one lane at a time with a single attempt,
    # and a Portkey outage that meets the first request of group "a"
    function = configure(MAX_CONCURRENCY="1", PORTKEY_MAX_ATTEMPTS="1")
    fifo = EmbeddedStack(stack.aws, stack.portkey, create_stack(stack.aws, fifo=True, names=_fifo_names()))
    sqs = stack.aws.client("sqs")
    for group, run in [("a", "run_a1"), ("a", "run_a2"), ("b", "run_b1")]:
        sqs.send_message(
            QueueUrl=fifo.resources.queue_url,
            MessageBody=json.dumps(a_request(run_id=run)),
            MessageGroupId=group,
        )
    portkey.inject(Fault.error(503))
    # When the batch is processed
    poller = QueuePoller(
        sqs, fifo.resources.queue_url, fifo.resources.queue_arn, stack.aws.region, function.lambda_handler
    )
    outcome = poller.poll_once()
    # Then group a stopped at its failure (a2 not attempted) and group b went on
    called = [call.path.rsplit("/", 1)[-1] for call in portkey.requests]
    assert called == ["run_a1", "run_b1"]
    assert len(outcome.failed) == 2
    assert [e["detail"]["run"]["id"] for e in stack.published()] == ["run_b1"]


def test_a_request_held_back_on_its_last_delivery_is_dead_lettered_as_held_back(
    stack: EmbeddedStack, portkey: PortkeyStandIn, function: Any
) -> None:
    # Given two requests for the same run in one batch: the first on its first delivery, failing with a
    # 503; the second, behind it, on its last delivery (the local queue's maxReceiveCount is 3)
    portkey.inject(Fault.error(503), times=3)
    stack.send(a_request(metadata={"step": "1"}))
    stack.send(a_request(metadata={"step": "2"}))
    received = stack.aws.client("sqs").receive_message(
        QueueUrl=stack.resources.queue_url, MaxNumberOfMessages=2
    )["Messages"]
    first, second = sorted(received, key=lambda message: json.loads(message["Body"])["metadata"]["step"])
    last = {**_record(stack, second), "attributes": {"ApproximateReceiveCount": "3", "SentTimestamp": "0"}}
    # When the batch is handled
    answer = function.lambda_handler({"Records": [_record(stack, first), last]}, _context())
    # Then the first comes back; the second, which SQS would move reason-less, waits in the DLQ as held_back
    assert answer == {"batchItemFailures": [{"itemIdentifier": first["MessageId"]}]}
    [dead] = stack.dead_letters()
    assert attribute(dead, "error_code") == "held_back"
    assert json.loads(dead["Body"])["metadata"] == {"step": "2"}
    assert stack.published() == []


def _context() -> LocalLambdaContext:
    arn = "arn:aws:lambda:us-east-1:123456789012:function:run-tagger-local"
    return LocalLambdaContext("run-tagger-local", arn, time.monotonic() + 30)


def _fifo_names() -> Any:
    from local.aws import StackNames

    return StackNames.suffixed()


def _record(stack: EmbeddedStack, message: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "0"},
        "messageAttributes": {},
        "md5OfBody": message["MD5OfBody"],
        "eventSource": "aws:sqs",
        "eventSourceARN": stack.resources.queue_arn,
        "awsRegion": stack.aws.region,
    }


def test_no_key_is_exposed_by_any_fault(
    stack: EmbeddedStack,
    lambda_poller: QueuePoller,
    portkey: PortkeyStandIn,
    capfd: pytest.CaptureFixture[str],
    function_log: io.StringIO,
) -> None:
    # Given Portkey echoing the key it was sent in its error message
    portkey.inject(Fault.error(400, body={"error": {"message": f"bad key {DEFAULT_KEYS['api_key']}"}}))
    stack.send(a_request())
    # When the request is processed
    lambda_poller.poll_once()
    # Then the key appears nowhere: not in the DLQ, the event or the output
    dead = _dead_lettered(stack, "portkey_rejected")
    assert DEFAULT_KEYS["api_key"] not in json.dumps(dead)
    assert DEFAULT_KEYS["api_key"] not in "".join(capfd.readouterr())
    assert "portkey_rejected" in function_log.getvalue()  # the function's log lines were seen
    assert DEFAULT_KEYS["api_key"] not in function_log.getvalue()


def test_a_success_the_idempotency_table_cannot_record_is_still_a_success(
    stack: EmbeddedStack, configure: Configure, portkey: PortkeyStandIn, function_log: io.StringIO
) -> None:
    # Given a DynamoDB that refuses to mark the request completed (after its event went out)
    import boto3
    from botocore.exceptions import ClientError

    refused: list[str] = []

    def refuse(**_: Any) -> None:
        refused.append("BatchWriteItem")
        raise ClientError(
            {"Error": {"Code": "InternalServerError", "Message": "try later"}}, "BatchWriteItem"
        )

    boto3.setup_default_session()
    assert boto3.DEFAULT_SESSION is not None
    boto3.DEFAULT_SESSION.events.register("before-call.dynamodb.BatchWriteItem", refuse)
    try:
        app = configure()
        stack.send(a_request(request_id="req-unrecorded"))
        # When the request is processed
        outcome = stack.poller(app.lambda_handler).poll_once()
    finally:
        boto3.DEFAULT_SESSION = None
    # Then the item is settled as the success it was: one event, deleted, not retried into a second one
    assert refused
    assert outcome.failed == []
    assert len(portkey.requests) == 1
    _settled_once(stack)
    # And a warning names the request whose later duplicate would be tagged again
    [warning] = [
        json.loads(line) for line in function_log.getvalue().splitlines() if "did not record" in line
    ]
    assert (warning["level"], warning["dedup_key"]) == ("WARNING", ":req-unrecorded")
