"""Unit tests of `TagRunPipeline.handle_held_back`: a record held back behind a failure of its lane, on
its own last delivery, waits in the DLQ as `held_back`, unless its blocker is leaving by SQS's move."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, cast

from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from run_tagger.errors import PublishFailed, TagRunError
from run_tagger.pipeline import PipelineDeps, TagRunPipeline

MAX_RECEIVE_COUNT = 3


def record(message_id: str, received: int) -> SQSRecord:
    return SQSRecord(
        {
            "messageId": message_id,
            "receiptHandle": f"handle-{message_id}",
            "body": '{"thread_id": "t", "run_id": "r", "metadata": {"n": "1"}}',
            "attributes": {"ApproximateReceiveCount": str(received), "SentTimestamp": "0"},
            "messageAttributes": {},
            "md5OfBody": "0" * 32,
            "eventSource": "aws:sqs",
            "eventSourceARN": "arn:aws:sqs:eu-west-1:123456789012:tag-run",
            "awsRegion": "eu-west-1",
        }
    )


@dataclass
class FakeDeadLetters:
    refuse: bool = False
    sent: list[tuple[str, str]] = field(default_factory=list)

    def send(self, body: str, error: TagRunError, *, message_id: str, group_id: str | None = None) -> None:
        if self.refuse:
            raise PublishFailed("could not send the message to the dead-letter queue: ClientError")
        self.sent.append((message_id, error.code))


@dataclass
class FakeLog:
    lines: list[str] = field(default_factory=list)

    def failed(
        self, error: TagRunError, message_id: str, *, dead_lettered: bool, last_delivery: bool = False
    ) -> None:
        self.lines.append(f"{message_id} {error.code} dead_lettered={dead_lettered} last={last_delivery}")

    def crashed(self, message_id: str, *, last_delivery: bool = False) -> None:
        self.lines.append(f"{message_id} crashed last={last_delivery}")


class SecondsLeft:
    """A Lambda context with a fixed time left."""

    def __init__(self, seconds: float) -> None:
        self._millis = int(seconds * 1000)

    def get_remaining_time_in_millis(self) -> int:
        return self._millis


def pipeline(dead_letters: Any, log: FakeLog) -> TagRunPipeline:
    unused = cast("Any", None)  # the parts of the pipeline a held-back record never reaches
    deps = PipelineDeps(
        keys=unused,
        portkey=unused,
        builder=unused,
        events=unused,
        dead_letters=dead_letters,
        log=cast("Any", log),
    )
    return TagRunPipeline(deps, max_receive_count=MAX_RECEIVE_COUNT, clock=lambda: 1000.0)


def test_on_its_last_delivery_a_held_back_record_is_dead_lettered_as_held_back() -> None:
    # Given a record on its last delivery, held back behind one that is not on its last
    dead_letters, log = FakeDeadLetters(), FakeLog()
    # When it is offered
    taken = pipeline(dead_letters, log).handle_held_back(record("m2", 3), record("m1", 2), SecondsLeft(30))
    # Then it is in the DLQ as held_back, and reported so
    assert taken is True
    assert dead_letters.sent == [("m2", "held_back")]
    assert log.lines == ["m2 held_back dead_lettered=True last=False"]


def test_before_its_last_delivery_a_held_back_record_waits_for_redelivery() -> None:
    dead_letters = FakeDeadLetters()

    taken = pipeline(dead_letters, FakeLog()).handle_held_back(
        record("m2", 2), record("m1", 1), SecondsLeft(30)
    )

    assert taken is False
    assert dead_letters.sent == []


def test_behind_a_blocker_on_its_own_last_delivery_it_follows_the_blocker_to_sqss_move() -> None:
    # Given a blocker that failed its last delivery without being dead-lettered (SQS moves it next)
    dead_letters = FakeDeadLetters()
    # When the record behind it, also on its last delivery, is offered
    taken = pipeline(dead_letters, FakeLog()).handle_held_back(
        record("m2", 3), record("m1", 3), SecondsLeft(30)
    )
    # Then it is left to SQS too, so that it reaches the DLQ after its blocker, as a FIFO group must
    assert taken is False
    assert dead_letters.sent == []


def test_with_under_a_second_left_it_is_left_to_the_queue() -> None:
    # Given an invocation with 0.5 s left
    dead_letters, log = FakeDeadLetters(), FakeLog()
    # When a held-back record on its last delivery is offered
    taken = pipeline(dead_letters, log).handle_held_back(record("m2", 3), record("m1", 1), SecondsLeft(0.5))
    # Then nothing is sent, and the log says SQS moves it
    assert taken is False
    assert dead_letters.sent == []
    assert log.lines == ["m2 held_back dead_lettered=False last=True"]


def test_a_dlq_refusing_it_leaves_it_to_the_queue() -> None:
    taken = pipeline(FakeDeadLetters(refuse=True), FakeLog()).handle_held_back(
        record("m2", 3), record("m1", 1), SecondsLeft(30)
    )

    assert taken is False


def test_an_unexpected_error_leaves_it_to_the_queue_instead_of_failing_the_batch() -> None:
    # Given a DLQ client that fails in a way nobody planned for
    class Broken:
        def send(self, *args: object, **kwargs: object) -> None:
            raise RuntimeError("unexpected")

    log = FakeLog()
    # When a held-back record on its last delivery is offered
    taken = pipeline(Broken(), log).handle_held_back(record("m2", 3), record("m1", 1), SecondsLeft(30))
    # Then it is reported as a crash and left to the queue; nothing propagates into the batch
    assert taken is False
    assert log.lines == ["m2 crashed last=True"]
