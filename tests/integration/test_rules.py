"""events/rules/: the consumer rule patterns, matched by EventBridge as moto implements it."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from local.aws import EmulatedAws

EVENTS = Path(__file__).resolve().parents[2] / "events"


def _sample(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((EVENTS / name).read_text())
    return loaded


def _samples() -> dict[str, dict[str, Any]]:
    tagged = _sample("run-tagged.json")
    other_assistant = copy.deepcopy(tagged)
    other_assistant["detail"]["run"]["assistant_id"] = "asst_someone_else"
    no_customer = copy.deepcopy(tagged)
    no_customer["detail"]["run"]["metadata"] = {"priority": "low"}
    failed = _sample("run-tag-failed.json")
    bad_request = copy.deepcopy(failed)
    bad_request["detail"]["error"]["code"] = "invalid_request"
    return {
        "tagged": tagged,
        "other_assistant": other_assistant,
        "no_customer": no_customer,
        "failed_not_found": failed,
        "failed_bad_request": bad_request,
    }


EXPECTED = {
    "all-tagged-runs.json": {"tagged", "other_assistant", "no_customer"},
    "runs-of-one-assistant.json": {"tagged", "no_customer"},
    "failures-by-error-code.json": {"failed_not_found"},
    "runs-with-metadata-key.json": {"tagged", "other_assistant"},
}


def test_every_rule_file_is_covered() -> None:
    assert {path.name for path in (EVENTS / "rules").glob("*.json")} == set(EXPECTED)


@pytest.mark.parametrize("rule", sorted(EXPECTED))
def test_a_rule_matches_exactly_the_events_it_describes(aws: EmulatedAws, rule: str) -> None:
    # Given a bus with the rule routing to a queue
    events, sqs = aws.client("events"), aws.client("sqs")
    name = rule.removesuffix(".json")
    bus = f"rules-{name}"
    events.create_event_bus(Name=bus)
    queue_url = sqs.create_queue(QueueName=f"rules-{name}")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    events.put_rule(Name=name, EventBusName=bus, EventPattern=(EVENTS / "rules" / rule).read_text())
    events.put_targets(Rule=name, EventBusName=bus, Targets=[{"Id": "q", "Arn": queue_arn}])
    # When every sample event is published on it
    for label, event in _samples().items():
        detail = {**event["detail"], "sample": label}
        events.put_events(
            Entries=[
                {
                    "EventBusName": bus,
                    "Source": event["source"],
                    "DetailType": event["detail-type"],
                    "Detail": json.dumps(detail),
                }
            ]
        )
    # Then exactly the expected ones reached the queue
    received: set[str] = set()
    while messages := sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", []):
        for message in messages:
            received.add(json.loads(message["Body"])["detail"]["sample"])
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    assert received == EXPECTED[rule]
