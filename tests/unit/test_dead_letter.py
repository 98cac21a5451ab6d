"""The DLQ keeps the original body and a reason SQS will accept."""

from __future__ import annotations

from typing import Any

from run_tagger.dead_letter import DeadLetterQueue
from run_tagger.errors import InvalidRequest


class RecordingSqs:
    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    def send_message(self, **kwargs: Any) -> dict[str, str]:
        self.sent.append(kwargs)
        return {"MessageId": "m"}


def test_the_body_goes_unchanged_with_its_reason() -> None:
    sqs = RecordingSqs()

    DeadLetterQueue(sqs, "https://sqs/q").send("{bad", InvalidRequest("request: not JSON"), message_id="m1")  # type: ignore[arg-type]

    [sent] = sqs.sent
    assert sent["MessageBody"] == "{bad"
    assert sent["MessageAttributes"]["error_code"]["StringValue"] == "invalid_request"
    assert sent["MessageAttributes"]["error_message"]["StringValue"] == "request: not JSON"
    assert sent["MessageAttributes"]["source_message_id"]["StringValue"] == "m1"


def test_a_reason_with_characters_sqs_refuses_is_made_acceptable() -> None:
    # Given a reason that quotes a field name holding control characters
    sqs = RecordingSqs()
    error = InvalidRequest("bad\x00field\x1b: unknown field")
    # When it is dead-lettered
    DeadLetterQueue(sqs, "https://sqs/q").send("{}", error, message_id="m2")  # type: ignore[arg-type]
    # Then the attribute holds only characters SQS accepts, and says the same otherwise
    assert sqs.sent[0]["MessageAttributes"]["error_message"]["StringValue"] == "bad?field?: unknown field"


def test_a_fifo_dlq_gets_the_group_and_a_deduplication_id() -> None:
    sqs = RecordingSqs()

    DeadLetterQueue(sqs, "https://sqs/q.fifo").send("{}", InvalidRequest("x"), message_id="m3", group_id="g")  # type: ignore[arg-type]

    assert (sqs.sent[0]["MessageGroupId"], sqs.sent[0]["MessageDeduplicationId"]) == ("g", "m3")
