"""The embedded stack: moto's server on loopback, the template's resources, and the Lambda-like poller."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from aws_lambda_powertools.utilities.parser.models import EventBridgeModel, SnsNotificationModel, SqsModel

from local.aws import (
    DEFAULT_KEYS,
    TENANT_KEYS,
    EmulatedAws,
    StackNames,
    StackResources,
    create_stack,
    drain,
    put_keys,
    read_published_events,
)
from local.poller import BatchOutcome, Handler, QueuePoller

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

REQUEST = {"thread_id": "thread_abc", "run_id": "run_abc", "metadata": {"team": "search"}}


@pytest.fixture(scope="session")
def aws() -> Iterator[EmulatedAws]:
    with EmulatedAws() as emulator:
        yield emulator


@pytest.fixture
def stack(aws: EmulatedAws) -> StackResources:
    # A fresh, uniquely named stack per test instead of a reset: moto's state is per process and
    # other test modules may be using it.
    return create_stack(aws, names=StackNames.suffixed())


@pytest.fixture
def sqs(aws: EmulatedAws) -> SQSClient:
    return aws.client("sqs")


class RecordingHandler:
    """A stand-in for the function: remembers each event and fails the bodies it is told to."""

    def __init__(self, failing_bodies: frozenset[str] = frozenset()) -> None:
        self.events: list[dict[str, Any]] = []
        self.remaining_millis: list[int] = []
        self._failing = failing_bodies

    def __call__(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        self.events.append(event)
        self.remaining_millis.append(context.get_remaining_time_in_millis())
        failures = [r["messageId"] for r in event["Records"] if r["body"] in self._failing]
        return {"batchItemFailures": [{"itemIdentifier": i} for i in failures]}


def poller_for(aws: EmulatedAws, stack: StackResources, handler: Handler, **options: Any) -> QueuePoller:
    return QueuePoller(
        aws.client("sqs"), stack.queue_url, stack.queue_arn, aws.region, handler, wait_seconds=0, **options
    )


def send(sqs: SQSClient, stack: StackResources, *bodies: str) -> None:
    for body in bodies:
        sqs.send_message(QueueUrl=stack.queue_url, MessageBody=body)


def test_stack_queue_dead_letters_after_three_receives(aws: EmulatedAws, stack: StackResources) -> None:
    attributes = aws.client("sqs").get_queue_attributes(QueueUrl=stack.queue_url, AttributeNames=["All"])
    redrive = json.loads(attributes["Attributes"]["RedrivePolicy"])
    assert redrive == {"deadLetterTargetArn": stack.dlq_arn, "maxReceiveCount": 3}


def test_stack_secrets_hold_default_and_tenant_keys(aws: EmulatedAws, stack: StackResources) -> None:
    secrets = aws.client("secretsmanager")
    default = secrets.get_secret_value(SecretId=stack.secret_id)["SecretString"]
    tenant = secrets.get_secret_value(SecretId=f"{stack.tenant_secret_prefix}acme")["SecretString"]
    assert (json.loads(default), json.loads(tenant)) == (DEFAULT_KEYS, TENANT_KEYS)


def test_put_keys_rotates_the_secret(aws: EmulatedAws, stack: StackResources) -> None:
    put_keys(aws, stack.secret_id, {"api_key": "pk-rotated", "provider": "@openai-prod"})
    current = aws.client("secretsmanager").get_secret_value(SecretId=stack.secret_id)["SecretString"]
    assert json.loads(current) == {"api_key": "pk-rotated", "provider": "@openai-prod"}


def test_stack_idempotency_table_has_the_powertools_schema(aws: EmulatedAws, stack: StackResources) -> None:
    dynamodb = aws.client("dynamodb")
    table = dynamodb.describe_table(TableName=stack.idempotency_table_name)["Table"]
    ttl = dynamodb.describe_time_to_live(TableName=stack.idempotency_table_name)["TimeToLiveDescription"]
    assert table["KeySchema"] == [{"AttributeName": "id", "KeyType": "HASH"}]
    assert table["AttributeDefinitions"] == [{"AttributeName": "id", "AttributeType": "S"}]
    assert (ttl["TimeToLiveStatus"], ttl.get("AttributeName")) == ("ENABLED", "expiration")


def test_aws_environment_points_a_default_boto3_client_at_the_emulator(
    aws: EmulatedAws, stack: StackResources, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    for name, value in aws.environment().items():
        monkeypatch.setenv(name, value)
    assert stack.queue_url in boto3.client("sqs").list_queues().get("QueueUrls", [])


def test_sent_message_reaches_the_handler_as_a_lambda_sqs_record(
    aws: EmulatedAws, stack: StackResources, sqs: SQSClient
) -> None:
    body = json.dumps(REQUEST)
    sqs.send_message(
        QueueUrl=stack.queue_url,
        MessageBody=body,
        MessageAttributes={
            "trace": {"DataType": "String", "StringValue": "abc"},
            "blob": {"DataType": "Binary", "BinaryValue": b"\x00\x01"},
        },
    )
    handler = RecordingHandler()
    poller_for(aws, stack, handler).poll_once()
    [record] = handler.events[0]["Records"]
    SqsModel.model_validate(handler.events[0])
    assert set(record) == {
        "messageId", "receiptHandle", "body", "attributes", "messageAttributes",
        "md5OfMessageAttributes", "md5OfBody", "eventSource", "eventSourceARN", "awsRegion",
    }  # fmt: skip
    assert (record["body"], record["md5OfBody"]) == (body, hashlib.md5(body.encode()).hexdigest())  # noqa: S324
    assert (record["eventSource"], record["eventSourceARN"], record["awsRegion"]) == (
        "aws:sqs",
        stack.queue_arn,
        "us-east-1",
    )
    assert list(record["attributes"]) == [
        "ApproximateReceiveCount", "SentTimestamp", "SenderId", "ApproximateFirstReceiveTimestamp",
    ]  # fmt: skip
    assert record["attributes"]["ApproximateReceiveCount"] == "1"
    assert record["messageAttributes"] == {
        "trace": {"stringValue": "abc", "stringListValues": [], "binaryListValues": [], "dataType": "String"},
        "blob": {
            "binaryValue": base64.b64encode(b"\x00\x01").decode(),
            "stringListValues": [],
            "binaryListValues": [],
            "dataType": "Binary",
        },
    }


def test_handler_context_counts_down_from_the_function_timeout(
    aws: EmulatedAws, stack: StackResources
) -> None:
    send(aws.client("sqs"), stack, "x")
    handler = RecordingHandler()
    poller_for(aws, stack, handler, function_timeout_seconds=5).poll_once()
    assert 0 < handler.remaining_millis[0] <= 5000


def test_fifo_record_carries_group_and_deduplication_ids(aws: EmulatedAws, sqs: SQSClient) -> None:
    stack = create_stack(aws, fifo=True, names=StackNames.suffixed())
    sqs.send_message(
        QueueUrl=stack.queue_url, MessageBody="x", MessageGroupId="run_abc", MessageDeduplicationId="d1"
    )
    handler = RecordingHandler()
    poller_for(aws, stack, handler).poll_once()
    attributes = handler.events[0]["Records"][0]["attributes"]
    assert (attributes["MessageGroupId"], attributes["MessageDeduplicationId"]) == ("run_abc", "d1")
    assert "SequenceNumber" in attributes


def test_eventbridge_request_reaches_the_queue_as_the_full_event(
    aws: EmulatedAws, stack: StackResources
) -> None:
    entry = aws.client("events").put_events(
        Entries=[
            {
                "EventBusName": stack.bus_name,
                "Source": "billing",
                "DetailType": "Tag Run Requested",
                "Detail": json.dumps(REQUEST),
            }
        ]
    )["Entries"][0]
    [message] = drain(aws, stack.queue_url)
    event = json.loads(message["Body"])
    EventBridgeModel.model_validate(event)  # it requires "account", which moto's default body lacks
    assert set(event) == {
        "version",
        "id",
        "detail-type",
        "source",
        "account",
        "time",
        "region",
        "resources",
        "detail",
    }
    assert (event["id"], event["detail-type"], event["source"]) == (
        entry["EventId"],
        "Tag Run Requested",
        "billing",
    )
    assert event["detail"] == REQUEST


def test_sns_publish_reaches_the_queue_as_a_notification(aws: EmulatedAws, stack: StackResources) -> None:
    published = aws.client("sns").publish(TopicArn=stack.topic_arn, Message=json.dumps(REQUEST))
    [message] = drain(aws, stack.queue_url)
    notification = json.loads(message["Body"])
    SnsNotificationModel.model_validate(notification)
    assert (notification["Type"], notification["MessageId"], notification["TopicArn"]) == (
        "Notification",
        published["MessageId"],
        stack.topic_arn,
    )
    assert json.loads(notification["Message"]) == REQUEST


def test_published_run_tagged_event_reaches_the_inspection_queue(
    aws: EmulatedAws, stack: StackResources
) -> None:
    detail = {"run": {"id": "run_abc"}, "request": REQUEST, "truncated": []}
    aws.client("events").put_events(
        Entries=[
            {
                "EventBusName": stack.bus_name,
                "Source": "run-tagger",
                "DetailType": "Run Tagged",
                "Detail": json.dumps(detail),
            },
            {
                "EventBusName": stack.bus_name,
                "Source": "someone-else",
                "DetailType": "Run Tagged",
                "Detail": "{}",
            },
        ]
    )
    [event] = read_published_events(aws, stack.inspection_queue_url)
    assert (event["source"], event["detail-type"], event["detail"]) == ("run-tagger", "Run Tagged", detail)


def test_poller_deletes_successes_and_leaves_failures(
    aws: EmulatedAws, stack: StackResources, sqs: SQSClient
) -> None:
    send(sqs, stack, "ok-1", "fail", "ok-2")
    outcome = poller_for(aws, stack, RecordingHandler(frozenset({"fail"}))).poll_once()
    [left] = drain(aws, stack.queue_url)
    assert (outcome.received, outcome.deleted, outcome.failed, outcome.error) == (
        3,
        2,
        [left["MessageId"]],
        None,
    )
    assert (left["Body"], left["Attributes"]["ApproximateReceiveCount"]) == ("fail", "2")


def test_handler_that_raises_deletes_nothing(aws: EmulatedAws, stack: StackResources, sqs: SQSClient) -> None:
    def broken(event: dict[str, Any], context: Any) -> dict[str, Any]:
        raise RuntimeError("bug")

    send(sqs, stack, "a", "b")
    outcome = poller_for(aws, stack, broken).poll_once()
    assert (outcome.deleted, len(outcome.failed), outcome.error) == (0, 2, "handler raised RuntimeError: bug")
    assert sorted(m["Body"] for m in drain(aws, stack.queue_url)) == ["a", "b"]


def test_unknown_item_identifier_fails_the_whole_batch(
    aws: EmulatedAws, stack: StackResources, sqs: SQSClient
) -> None:
    send(sqs, stack, "a", "b")
    outcome = poller_for(
        aws, stack, lambda event, context: {"batchItemFailures": [{"itemIdentifier": "nope"}]}
    ).poll_once()
    assert (outcome.deleted, outcome.error is not None) == (0, True)
    assert len(drain(aws, stack.queue_url)) == 2


def test_handler_running_past_its_timeout_fails_the_whole_batch(
    aws: EmulatedAws, stack: StackResources, sqs: SQSClient
) -> None:
    def overrunning(event: dict[str, Any], context: Any) -> dict[str, Any]:
        while context.get_remaining_time_in_millis() > 0:  # works until Lambda would stop it
            pass
        return {"batchItemFailures": []}

    send(sqs, stack, "a")
    outcome = poller_for(aws, stack, overrunning, function_timeout_seconds=0.05).poll_once()
    assert (outcome.deleted, outcome.error) == (0, "Task timed out after 0.05 seconds")
    assert [m["Body"] for m in drain(aws, stack.queue_url)] == ["a"]


def test_failing_message_is_redriven_to_the_dlq_after_three_receives(
    aws: EmulatedAws, stack: StackResources, sqs: SQSClient
) -> None:
    send(sqs, stack, "fail")
    outcomes = poller_for(aws, stack, RecordingHandler(frozenset({"fail"}))).run_until_drained(max_batches=10)
    assert [(o.received, o.deleted, len(o.failed)) for o in outcomes] == [(1, 0, 1)] * 3
    [dead] = drain(aws, stack.dlq_url)
    assert dead["Body"] == "fail"


def test_batch_of_25_is_gathered_from_several_receives(
    aws: EmulatedAws, stack: StackResources, sqs: SQSClient
) -> None:
    for start in range(0, 25, 10):
        sqs.send_message_batch(
            QueueUrl=stack.queue_url,
            Entries=[{"Id": str(i), "MessageBody": f"m{i}"} for i in range(start, min(start + 10, 25))],
        )
    poller_sqs = aws.client("sqs")
    receives: list[str] = []
    poller_sqs.meta.events.register("before-call.sqs.ReceiveMessage", lambda **_: receives.append("call"))
    handler = RecordingHandler()
    poller = QueuePoller(
        poller_sqs, stack.queue_url, stack.queue_arn, aws.region, handler,
        batch_size=25, batching_window_seconds=1, wait_seconds=0,
    )  # fmt: skip
    outcome = poller.poll_once()
    assert outcome == BatchOutcome(received=25, deleted=25)
    assert len(handler.events[0]["Records"]) == 25
    assert len(receives) == 3


def test_batches_over_ten_need_a_batching_window(aws: EmulatedAws, stack: StackResources) -> None:
    with pytest.raises(ValueError, match="batching window"):
        poller_for(aws, stack, RecordingHandler(), batch_size=25)
