"""TagRunProducer: other services' way to send requests, validated before they leave."""

from __future__ import annotations

from types import ModuleType

import pytest
from run_tagger.errors import InvalidRequest
from run_tagger.producer import TagRunProducer

from local.stack import EmbeddedStack
from tests.support import a_request, one_event


def test_a_request_sent_to_the_queue_is_tagged(stack: EmbeddedStack, function: ModuleType) -> None:
    # Given a producer for the queue
    producer = TagRunProducer.to_queue(stack.resources.queue_url, sqs=stack.aws.client("sqs"))
    # When it sends a request
    message_id = producer.send("thread_p", "run_p", {"team": "search"}, request_id="prod-1")
    # Then the function tags the run
    stack.poller(function.lambda_handler).poll_once()
    event = one_event(stack.published(), "Run Tagged")
    assert event["detail"]["request"]["request_id"] == "prod-1"
    assert message_id


def test_a_request_sent_to_the_bus_is_tagged(stack: EmbeddedStack, function: ModuleType) -> None:
    producer = TagRunProducer.to_bus(stack.resources.bus_name, events=stack.aws.client("events"))

    producer.send("thread_p", "run_bus", {"team": "search"})

    stack.poller(function.lambda_handler).poll_once()
    assert one_event(stack.published(), "Run Tagged")["detail"]["run"]["id"] == "run_bus"


def test_an_invalid_request_is_refused_before_sending(stack: EmbeddedStack) -> None:
    producer = TagRunProducer.to_queue(stack.resources.queue_url, sqs=stack.aws.client("sqs"))

    with pytest.raises(InvalidRequest, match="thread_id"):
        producer.send("thread/../x", "run_p", {})

    assert stack.queue_depth() == 0


def test_a_batch_goes_in_calls_of_ten_and_reports_bad_entries(stack: EmbeddedStack) -> None:
    # Given 25 requests, two of them invalid, and a count of SendMessageBatch calls
    sqs = stack.aws.client("sqs")
    calls: list[str] = []
    sqs.meta.events.register("before-call.sqs.SendMessageBatch", lambda **_: calls.append("batch"))
    requests = [a_request(run_id=f"run_{i}") for i in range(25)]
    requests[3] = a_request(run_id="bad id")
    requests[20] = {**a_request(), "meta_data": {}}
    # When they are sent as a batch
    result = TagRunProducer.to_queue(stack.resources.queue_url, sqs=sqs).send_batch(requests)
    # Then 23 were sent in three calls and the two bad ones are reported by position
    assert len(result.sent) == 23
    assert [(f.index, f.code) for f in result.failed] == [(3, "invalid_request"), (20, "invalid_request")]
    assert len(calls) == 3
    assert stack.queue_depth() == 23
