"""The DLQ keeps the original body and a reason SQS will accept."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError
from run_tagger.dead_letter import DeadLetterQueue
from run_tagger.errors import InvalidRequest, PublishFailed


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


class SizeLimitedSqs(RecordingSqs):
    """Refuses a message as SQS does when its body and attributes together pass `limit` bytes."""

    def __init__(self, limit: int, *, code: str = "InvalidParameterValue") -> None:
        super().__init__()
        self.limit = limit
        self.code = code
        self.refused = 0

    def send_message(self, **kwargs: Any) -> dict[str, str]:
        size = len(kwargs["MessageBody"].encode()) + sum(
            len(name.encode()) + len(value["DataType"].encode()) + len(value["StringValue"].encode())
            for name, value in kwargs["MessageAttributes"].items()
        )
        if size > self.limit:
            self.refused += 1
            reason = f"One or more parameters are invalid. Reason: Message must be shorter than {self.limit}"
            raise ClientError({"Error": {"Code": self.code, "Message": reason}}, "SendMessage")
        return super().send_message(**kwargs)


def test_a_body_too_large_for_its_whole_reason_keeps_the_code_the_reasons_start_and_source_id() -> None:
    # Given a DLQ whose size limit leaves room beside the body for a short reason only
    sqs = SizeLimitedSqs(limit=1_200)
    error = InvalidRequest("request: " + "unknown field 'x'; " * 50)
    # When the message is dead-lettered
    DeadLetterQueue(sqs, "https://sqs/q").send("b" * 1_000, error, message_id="m4")  # type: ignore[arg-type]
    # Then it went, its body whole, with the error code, the reason's first 100 characters and the source id
    [sent] = sqs.sent
    assert sent["MessageBody"] == "b" * 1_000
    attributes = {name: value["StringValue"] for name, value in sent["MessageAttributes"].items()}
    assert attributes == {
        "error_code": "invalid_request",
        "error_message": error.message[:100],
        "source_message_id": "m4",
    }
    assert sqs.refused == 1


def test_a_body_at_the_size_limit_goes_bare_rather_than_not_at_all() -> None:
    sqs = SizeLimitedSqs(limit=1_000)

    DeadLetterQueue(sqs, "https://sqs/q").send("b" * 1_000, InvalidRequest("too big"), message_id="m5")  # type: ignore[arg-type]

    [sent] = sqs.sent
    assert (sent["MessageBody"], sent["MessageAttributes"]) == ("b" * 1_000, {})


def test_a_body_too_large_even_bare_is_a_failure_to_dead_letter() -> None:
    sqs = SizeLimitedSqs(limit=10)

    with pytest.raises(PublishFailed, match="dead-letter queue"):
        DeadLetterQueue(sqs, "https://sqs/q").send("b" * 1_000, InvalidRequest("x"), message_id="m6")  # type: ignore[arg-type]

    assert sqs.refused == 3


def test_any_other_refusal_is_not_retried_without_the_reason() -> None:
    sqs = SizeLimitedSqs(limit=0, code="AccessDenied")

    with pytest.raises(PublishFailed, match="ClientError"):
        DeadLetterQueue(sqs, "https://sqs/q").send("{}", InvalidRequest("x"), message_id="m7")  # type: ignore[arg-type]

    assert sqs.refused == 1


class RefusingSqs(RecordingSqs):
    """Refuses every message with an InvalidParameterValue that is not about its size."""

    def send_message(self, **kwargs: Any) -> dict[str, str]:
        self.sent.append(kwargs)
        message = "Value g!roup for parameter MessageGroupId is invalid. Reason: Invalid characters found."
        raise ClientError({"Error": {"Code": "InvalidParameterValue", "Message": message}}, "SendMessage")


def test_an_invalid_parameter_that_is_not_the_size_is_not_retried_without_the_reason() -> None:
    # Given SQS refusing a parameter, not the message's size
    sqs = RefusingSqs()
    dead_letters = DeadLetterQueue(sqs, "https://sqs/q.fifo")  # type: ignore[arg-type]
    # When a message is dead-lettered
    with pytest.raises(PublishFailed, match="ClientError"):
        dead_letters.send("{}", InvalidRequest("x"), message_id="m8", group_id="g!roup")
    # Then it failed once, with its reason: a smaller message would not cure this refusal, so none is sent
    assert len(sqs.sent) == 1
    assert "error_message" in sqs.sent[0]["MessageAttributes"]


def test_an_empty_reason_is_sent_as_a_dash_since_sqs_refuses_an_empty_attribute() -> None:
    sqs = RecordingSqs()

    DeadLetterQueue(sqs, "https://sqs/q").send("{}", InvalidRequest(""), message_id="m10")  # type: ignore[arg-type]

    assert sqs.sent[0]["MessageAttributes"]["error_message"]["StringValue"] == "-"


def test_a_long_reason_is_cut_to_a_thousand_characters() -> None:
    sqs = RecordingSqs()

    DeadLetterQueue(sqs, "https://sqs/q").send("{}", InvalidRequest("x" * 5_000), message_id="m9")  # type: ignore[arg-type]

    assert sqs.sent[0]["MessageAttributes"]["error_message"]["StringValue"] == "x" * 1_000
