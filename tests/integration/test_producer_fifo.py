"""TagRunProducer with a FIFO queue: a message group required, the request_id as de-duplication id."""

from __future__ import annotations

import json
import re
from types import ModuleType

import pytest
from run_tagger.producer import TagRunProducer

from local.aws import drain
from local.stack import EmbeddedStack
from tests.support import a_request, one_event


def _producer(stack: EmbeddedStack) -> TagRunProducer:
    return TagRunProducer.to_queue(stack.resources.queue_url, sqs=stack.aws.client("sqs"))


def test_a_request_sent_to_a_fifo_queue_in_a_group_is_tagged(
    fifo: EmbeddedStack, fifo_function: ModuleType
) -> None:
    # When a producer sends a request to a FIFO queue with a message group
    _producer(fifo).send("thread_f", "run_f", {"team": "search"}, message_group_id="thread_f")
    # Then the function tags the run
    fifo.poller(fifo_function.lambda_handler).poll_once()
    assert one_event(fifo.published(), "Run Tagged")["detail"]["run"]["id"] == "run_f"


def test_a_fifo_queue_without_a_group_is_refused_before_sending(fifo: EmbeddedStack) -> None:
    with pytest.raises(ValueError, match="FIFO queue: give a message_group_id"):
        _producer(fifo).send("thread_f", "run_f", {"team": "search"})

    assert fifo.queue_depth() == 0


def test_a_group_for_a_standard_queue_is_refused_before_sending(stack: EmbeddedStack) -> None:
    with pytest.raises(ValueError, match="not a FIFO queue"):
        _producer(stack).send("thread_s", "run_s", {"team": "search"}, message_group_id="g")

    assert stack.queue_depth() == 0


def test_a_group_for_the_bus_is_refused_as_the_rule_sets_it(stack: EmbeddedStack) -> None:
    producer = TagRunProducer.to_bus(stack.resources.bus_name, events=stack.aws.client("events"))

    with pytest.raises(ValueError, match="the bus rule sets the group"):
        producer.send("thread_b", "run_b", {"team": "search"}, message_group_id="g")


def test_a_fifo_batch_goes_in_its_group_in_order(fifo: EmbeddedStack) -> None:
    # When 25 requests are sent as a batch in one group
    requests = [a_request(run_id=f"run_{i}") for i in range(25)]
    result = _producer(fifo).send_batch(requests, message_group_id="billing")
    # Then every one is queued in that group, in the order given
    assert result.ok
    messages = drain(fifo.aws, fifo.resources.queue_url)
    assert [json.loads(m["Body"])["run_id"] for m in messages] == [f"run_{i}" for i in range(25)]
    assert {m["Attributes"]["MessageGroupId"] for m in messages} == {"billing"}


def test_on_a_fifo_queue_a_request_id_sent_twice_is_queued_once(fifo: EmbeddedStack) -> None:
    # Given a request sent to a FIFO queue with a request_id
    producer = _producer(fifo)
    producer.send("thread_f", "run_f", {"try": "1"}, request_id="billing-7", message_group_id="g")
    # When it is sent again with the same request_id (a retry that changed the body)
    producer.send("thread_f", "run_f", {"try": "2"}, request_id="billing-7", message_group_id="g")
    # Then SQS keeps only the first, as the function would skip the second
    [message] = drain(fifo.aws, fifo.resources.queue_url)
    assert json.loads(message["Body"])["metadata"] == {"try": "1"}


def test_on_a_fifo_queue_one_request_id_of_two_tenants_is_queued_twice(fifo: EmbeddedStack) -> None:
    # Given a request_id that two tenants happen to share (the function scopes it by tenant)
    producer = _producer(fifo)
    # When each tenant sends it
    for tenant in ("acme", "globex"):
        producer.send("thread_f", "run_f", {"a": "b"}, request_id="r-1", tenant=tenant, message_group_id="g")
    # Then both are queued
    assert len(drain(fifo.aws, fifo.resources.queue_url)) == 2


def test_a_request_id_sqs_would_not_take_as_a_deduplication_id_is_sent_as_a_digest(
    fifo: EmbeddedStack,
) -> None:
    # Given a request_id with spaces and non-ASCII letters, which SQS refuses as a MessageDeduplicationId
    request_id = "facture n° 42 / é"
    # When it is sent to a FIFO queue
    _producer(fifo).send("thread_f", "run_f", {"a": "b"}, request_id=request_id, message_group_id="g")
    # Then its de-duplication id is one SQS accepts: at most 128 printable ASCII characters, no spaces
    [message] = drain(fifo.aws, fifo.resources.queue_url)
    assert re.fullmatch(r"[!-~]{1,128}", message["Attributes"]["MessageDeduplicationId"])
