"""The smoke version of `make bench`: what a warm batch costs in AWS calls and connections, never in time."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest

from benchmarks.aws_calls import AwsCallCounter
from local.portkey import PortkeyStandIn
from local.stack import EmbeddedStack
from tests.conftest import Configure
from tests.support import a_request


@pytest.fixture
def aws_calls() -> Iterator[AwsCallCounter]:
    """Counts the function's AWS calls; installed before `configure`, so before its clients are built."""
    with AwsCallCounter() as counter:
        yield counter


@pytest.fixture
def warm_function(aws_calls: AwsCallCounter, configure: Configure, stack: EmbeddedStack) -> ModuleType:
    """The function as deployed (idempotency on) after one batch of 10: clients, keys, connections kept."""
    function = configure()
    _handle_batch(stack, function, aws_calls, size=10)
    stack.published()  # forget the warm-up's events
    return function


def _handle_batch(
    stack: EmbeddedStack, function: ModuleType, counter: AwsCallCounter, *, size: int
) -> Counter[str]:
    """Send `size` requests for runs not seen before, let Lambda's poller hand them over in one
    invocation, and return the AWS calls that invocation made."""
    batch = uuid.uuid4().hex[:8]
    for index in range(size):
        stack.send(a_request(run_id=f"run_{batch}_{index}"))
    calls: list[Counter[str]] = []

    def counted_handler(event: dict[str, Any], context: Any) -> Any:
        counter.reset()
        try:
            return function.lambda_handler(event, context)
        finally:
            calls.append(counter.snapshot())

    outcome = stack.poller(counted_handler, batch_size=size).poll_once()
    assert (outcome.received, outcome.failed, outcome.error) == (size, [], None)
    [invocation_calls] = calls
    return invocation_calls


def test_a_warm_batch_of_ten_fetches_no_key_opens_no_connection_and_publishes_once(
    warm_function: ModuleType, stack: EmbeddedStack, portkey: PortkeyStandIn, aws_calls: AwsCallCounter
) -> None:
    # Given a warm function and the stand-in's connection count at zero
    portkey.clear_requests()
    # When a batch of 10 requests for new runs arrives
    calls = _handle_batch(stack, warm_function, aws_calls, size=10)
    # Then the keys come from the cache, the pooled connections are reused, and one PutEvents carries all 10
    assert calls["GetSecretValue"] == 0
    assert calls["PutEvents"] == 1, f"AWS calls of the invocation: {dict(calls)}"
    assert portkey.connections_opened == 0
    assert len(portkey.requests) == 10
    assert [event["detail-type"] for event in stack.published()] == ["Run Tagged"] * 10


def test_a_warm_batch_of_ten_claims_each_request_and_records_them_done_in_one_call(
    warm_function: ModuleType, stack: EmbeddedStack, aws_calls: AwsCallCounter
) -> None:
    # Given a warm function with idempotency on
    # When a batch of 10 requests for new runs arrives
    calls = _handle_batch(stack, warm_function, aws_calls, size=10)
    # Then each request claimed its key before Portkey, and the ten successes were written together
    assert calls["PutItem"] == 10, f"AWS calls of the invocation: {dict(calls)}"
    assert calls["BatchWriteItem"] == 1
    assert calls["UpdateItem"] == 0


def test_a_warm_batch_of_25_publishes_in_three_put_events_calls(
    warm_function: ModuleType, stack: EmbeddedStack, aws_calls: AwsCallCounter
) -> None:
    # Given a warm function
    # When a batch of 25 requests arrives (Lambda's batching window gathers it from three receives)
    calls = _handle_batch(stack, warm_function, aws_calls, size=25)
    # Then its 25 events leave in PutEvents calls of 10, 10 and 5, and no key is fetched again
    assert calls["PutEvents"] == 3, f"AWS calls of the invocation: {dict(calls)}"
    assert calls["BatchWriteItem"] == 3
    assert calls["GetSecretValue"] == 0
    assert len([e for e in stack.published() if e["detail-type"] == "Run Tagged"]) == 25
