"""End to end against a deployed stack: a request goes in, its event comes out on the bus.

Set RUN_TAGGER_STACK to the stack's name (the Region and credentials come from the environment or the
profile). A temporary queue, subscribed by a temporary rule on the stack's bus, receives the run events;
both are removed afterwards, and so are the dead letters the test causes (they may still trip the
DLQ alarm for a minute). Without keys for a real run,
the valid request ends as a `Run Tag Failed` (run_not_found, or invalid_configuration while the secret
is empty): the round trip is what is checked. To see a `Run Tagged`, set RUN_TAGGER_E2E_THREAD_ID and
RUN_TAGGER_E2E_RUN_ID to a run the stack's Portkey keys can reach.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_sqs import SQSClient

STACK = os.environ.get("RUN_TAGGER_STACK", "")
REAL_RUN = (os.environ.get("RUN_TAGGER_E2E_THREAD_ID", ""), os.environ.get("RUN_TAGGER_E2E_RUN_ID", ""))
WAIT_SECONDS = float(os.environ.get("RUN_TAGGER_E2E_WAIT_SECONDS", "180"))
RUN_EVENTS = ["Run Tagged", "Run Tag Failed"]
PROBE_SOURCE, PROBE_TYPE = "run-tagger.e2e", "E2E Probe"

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        not STACK, reason="RUN_TAGGER_STACK is not set: deploy the stack (sam deploy) and export its name"
    ),
]


@dataclass(frozen=True)
class DeployedStack:
    name: str
    queue_url: str
    dead_letter_queue_url: str
    bus_name: str
    event_source: str

    @property
    def fifo(self) -> bool:
        return self.queue_url.endswith(".fifo")


@dataclass
class Inbox:
    """A queue the run events arrive on; keeps what it read, so each test waits only for its own."""

    sqs: SQSClient
    queue_url: str
    seen: list[dict[str, Any]] = field(default_factory=list)

    def wait_for(self, wanted: Callable[[dict[str, Any]], bool], what: str) -> dict[str, Any]:
        deadline = time.monotonic() + WAIT_SECONDS
        while True:
            found = next((event for event in self.seen if wanted(event)), None)
            if found is not None:
                return found
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                pytest.fail(
                    f"no {what} within {WAIT_SECONDS:.0f} s; saw {[e['detail-type'] for e in self.seen]}"
                )
            self.receive(wait_seconds=min(20, max(1, int(remaining))))

    def receive(self, wait_seconds: int) -> None:
        response = self.sqs.receive_message(
            QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=wait_seconds
        )
        for message in response.get("Messages", []):
            self.seen.append(json.loads(message["Body"]))
            self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])


@pytest.fixture(scope="module")
def stack() -> DeployedStack:
    import boto3

    cloudformation: Any = boto3.client("cloudformation")  # no mypy-boto3-cloudformation in the dev venv
    (description,) = cloudformation.describe_stacks(StackName=STACK)["Stacks"]
    outputs = {output["OutputKey"]: output["OutputValue"] for output in description.get("Outputs", [])}
    return DeployedStack(
        name=STACK,
        queue_url=outputs["TagRunQueueUrl"],
        dead_letter_queue_url=outputs["DeadLetterQueueUrl"],
        bus_name=outputs["EventBusName"],
        event_source=outputs["EventSource"],
    )


@pytest.fixture(scope="module")
def sqs() -> SQSClient:
    import boto3

    return boto3.client("sqs")


@pytest.fixture(scope="module")
def inbox(stack: DeployedStack, sqs: SQSClient) -> Iterator[Inbox]:
    """A temporary queue and rule receiving the stack's run events (and probes proving the rule works)."""
    import boto3

    events: EventBridgeClient = boto3.client("events")
    name = f"run-tagger-e2e-{uuid.uuid4().hex[:12]}"
    queue_url = sqs.create_queue(QueueName=name, Attributes={"SqsManagedSseEnabled": "true"})["QueueUrl"]
    try:
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        pattern = {"source": [stack.event_source, PROBE_SOURCE], "detail-type": [*RUN_EVENTS, PROBE_TYPE]}
        rule_arn = events.put_rule(
            Name=name, EventBusName=stack.bus_name, EventPattern=json.dumps(pattern), State="ENABLED"
        )["RuleArn"]
        try:
            sqs.set_queue_attributes(
                QueueUrl=queue_url, Attributes={"Policy": _allow_rule(queue_arn, rule_arn)}
            )
            events.put_targets(
                Rule=name, EventBusName=stack.bus_name, Targets=[{"Id": "inbox", "Arn": queue_arn}]
            )
            received = Inbox(sqs, queue_url)
            _wait_until_subscribed(events, stack.bus_name, received)
            yield received
        finally:
            events.remove_targets(Rule=name, EventBusName=stack.bus_name, Ids=["inbox"])
            events.delete_rule(Name=name, EventBusName=stack.bus_name)
    finally:
        sqs.delete_queue(QueueUrl=queue_url)


def _allow_rule(queue_arn: str, rule_arn: str) -> str:
    statement = {
        "Effect": "Allow",
        "Principal": {"Service": "events.amazonaws.com"},
        "Action": "sqs:SendMessage",
        "Resource": queue_arn,
        "Condition": {"ArnEquals": {"aws:SourceArn": rule_arn}},
    }
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


def _wait_until_subscribed(events: EventBridgeClient, bus_name: str, received: Inbox) -> None:
    """A new rule and queue policy take a while to apply: send probes until one arrives."""
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        probe = uuid.uuid4().hex
        events.put_events(
            Entries=[
                {
                    "EventBusName": bus_name,
                    "Source": PROBE_SOURCE,
                    "DetailType": PROBE_TYPE,
                    "Detail": json.dumps({"probe": probe}),
                }
            ]
        )
        waited_until = time.monotonic() + 20
        while time.monotonic() < waited_until:
            received.receive(wait_seconds=5)
            if any(event["detail"].get("probe") == probe for event in received.seen):
                return
    pytest.fail(f"the temporary rule on {bus_name} delivered no probe within {WAIT_SECONDS:.0f} s")


def send(stack: DeployedStack, sqs: SQSClient, body: str) -> str:
    if stack.fifo:  # content-based de-duplication is on; a group is still required
        return sqs.send_message(QueueUrl=stack.queue_url, MessageBody=body, MessageGroupId="run-tagger-e2e")[
            "MessageId"
        ]
    return sqs.send_message(QueueUrl=stack.queue_url, MessageBody=body)["MessageId"]


def take_dead_letter(stack: DeployedStack, sqs: SQSClient, message_id: str) -> dict[str, Any]:
    """Remove the dead letter of `message_id` from the DLQ (leaving others as they were) and return it."""
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        response = sqs.receive_message(
            QueueUrl=stack.dead_letter_queue_url,
            MaxNumberOfMessages=10,
            WaitTimeSeconds=5,
            MessageAttributeNames=["All"],
        )
        for message in response.get("Messages", []):
            source = message.get("MessageAttributes", {}).get("source_message_id")
            if source is not None and source.get("StringValue") == message_id:
                sqs.delete_message(
                    QueueUrl=stack.dead_letter_queue_url, ReceiptHandle=message["ReceiptHandle"]
                )
                return dict(message)
            sqs.change_message_visibility(
                QueueUrl=stack.dead_letter_queue_url,
                ReceiptHandle=message["ReceiptHandle"],
                VisibilityTimeout=0,
            )
    pytest.fail(f"no dead letter for {message_id} within {WAIT_SECONDS:.0f} s")


def test_given_a_tag_run_request_when_sent_to_the_queue_then_its_run_event_is_published(
    stack: DeployedStack, sqs: SQSClient, inbox: Inbox
) -> None:
    token = f"e2e-{uuid.uuid4().hex}"
    thread_id, run_id = REAL_RUN if all(REAL_RUN) else (f"thread_{token}", f"run_{token}")
    request = {"thread_id": thread_id, "run_id": run_id, "metadata": {"e2e": token}, "request_id": token}

    message_id = send(stack, sqs, json.dumps(request))
    event = inbox.wait_for(
        lambda e: (
            e["detail-type"] in RUN_EVENTS and (e["detail"].get("request") or {}).get("request_id") == token
        ),
        f"run event for request {token}",
    )

    assert event["source"] == stack.event_source
    assert event["detail"]["request"]["run_id"] == run_id
    if all(REAL_RUN):
        assert event["detail-type"] == "Run Tagged", event["detail"]
        assert event["detail"]["run"]["metadata"]["e2e"] == token
    elif event["detail-type"] == "Run Tag Failed":
        assert event["detail"]["error"]["retryable"] is False
        assert event["detail"]["message_id"] == message_id
        take_dead_letter(stack, sqs, message_id)


def test_given_an_invalid_request_when_sent_then_it_is_refused_and_kept_unchanged_in_the_dlq(
    stack: DeployedStack, sqs: SQSClient, inbox: Inbox
) -> None:
    body = json.dumps({"thread_id": "thread_e2e", "run_id": "run_e2e", "meta_data": {"typo": "yes"}})

    message_id = send(stack, sqs, body)
    event = inbox.wait_for(
        lambda e: e["detail-type"] == "Run Tag Failed" and e["detail"].get("message_id") == message_id,
        f"Run Tag Failed for message {message_id}",
    )
    dead_letter = take_dead_letter(stack, sqs, message_id)

    assert event["detail"]["request"] is None
    assert event["detail"]["error"]["code"] == "invalid_request"
    assert dead_letter["Body"] == body
    assert dead_letter["MessageAttributes"]["error_code"]["StringValue"] == "invalid_request"
