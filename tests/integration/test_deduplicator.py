"""The de-duplication store against the emulated DynamoDB table the stack creates: what it remembers, for
how long, and what a second delivery of a key in progress gets."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import pytest
from run_tagger.batching import Lanes
from run_tagger.idempotency import Deduplicator, DuplicateInProgress

from local.poller import LocalLambdaContext
from local.stack import EmbeddedStack

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

DAY_SECONDS = 24 * 60 * 60
FUNCTION_ARN = "arn:aws:lambda:us-east-1:123456789012:function:run-tagger-local"


def invocation_with(seconds: float) -> LocalLambdaContext:
    return LocalLambdaContext("run-tagger-local", FUNCTION_ARN, time.monotonic() + seconds)


@pytest.fixture
def dynamodb(stack: EmbeddedStack) -> DynamoDBClient:
    return stack.aws.client("dynamodb")


@pytest.fixture
def dedup(stack: EmbeddedStack, dynamodb: DynamoDBClient) -> Deduplicator:
    """As the function has it during an invocation with a minute left."""
    deduplicator = Deduplicator(stack.resources.idempotency_table_name, dynamodb, Lanes())
    deduplicator.register_lambda_context(invocation_with(60))  # type: ignore[arg-type]
    return deduplicator


def the_record(stack: EmbeddedStack, dynamodb: DynamoDBClient) -> dict[str, Any]:
    [item] = dynamodb.scan(TableName=stack.resources.idempotency_table_name)["Items"]
    return {name: next(iter(value.values())) for name, value in item.items()}


def test_a_completed_key_is_skipped_with_the_first_result(dedup: Deduplicator) -> None:
    # Given a key whose work completed
    runs: list[str] = []

    def work(name: str, latency_ms: float) -> dict[str, Any]:
        runs.append(name)
        return {"latency_ms": latency_ms}

    first = dedup.once("acme:req-1", lambda: work("first", 12.0))
    # When the same key comes again
    second = dedup.once("acme:req-1", lambda: work("second", 99.0))
    # Then its work is not run, and it says so with the first result
    assert (first.ran, second.ran) == (True, False)
    assert second.result == {"latency_ms": 12.0}
    assert runs == ["first"]


def test_a_key_in_progress_sends_a_second_delivery_back(dedup: Deduplicator) -> None:
    # Given a key whose work is running now (the second delivery arrives from inside it)
    seen: list[BaseException] = []

    def first_work() -> dict[str, Any]:
        with pytest.raises(DuplicateInProgress) as caught:
            dedup.once("acme:req-2", lambda: {"latency_ms": 1.0})
        seen.append(caught.value)
        return {"latency_ms": 2.0}

    # When the second delivery asks for the same key
    dedup.once("acme:req-2", first_work)
    # Then it was refused as transient (its message comes back) rather than skipped as done
    [error] = seen
    assert isinstance(error, DuplicateInProgress)
    assert error.retryable is True


def test_a_completed_key_is_remembered_for_a_day(
    stack: EmbeddedStack, dynamodb: DynamoDBClient, dedup: Deduplicator
) -> None:
    before = time.time()

    dedup.once("acme:req-3", lambda: {"latency_ms": 1.0})

    record = the_record(stack, dynamodb)
    assert record["status"] == "COMPLETED"
    assert before + DAY_SECONDS - 1 <= int(record["expiration"]) <= time.time() + DAY_SECONDS + 1


def test_a_claim_in_progress_expires_when_the_invocation_would_time_out(
    stack: EmbeddedStack, dynamodb: DynamoDBClient, dedup: Deduplicator
) -> None:
    # Given an invocation with 30 s left
    dedup.register_lambda_context(invocation_with(30))  # type: ignore[arg-type]
    claimed: list[dict[str, Any]] = []

    def work() -> dict[str, Any]:
        claimed.append(the_record(stack, dynamodb))
        return {"latency_ms": 1.0}

    before_ms = time.time() * 1000
    # When a key is claimed
    dedup.once("acme:req-4", work)
    # Then, while its work ran, the claim said it lapses with the invocation (a crash does not block it)
    [record] = claimed
    assert record["status"] == "INPROGRESS"
    assert before_ms + 30_000 - 1_000 <= int(record["in_progress_expiration"]) <= time.time() * 1000 + 30_000
