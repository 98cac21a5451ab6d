"""The tag-run pipeline: one SQS record in, one event out (or a dead letter with its reason).

The record handler returns when the message may be deleted (its `Run Tagged` event is published, or
it sits in the DLQ with its reason) and raises when it must come back (DESIGN §2).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol

from run_tagger.errors import (
    DeadlineExceeded,
    HeldBack,
    PermanentError,
    PublishFailed,
    TagRunError,
    TransientError,
    Unauthorized,
)
from run_tagger.request import ParsedMessage, parse_message
from run_tagger.run import run_to_json

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

    from run_tagger.batching import EventBatcher
    from run_tagger.dead_letter import DeadLetterQueue
    from run_tagger.idempotency import Deduplicator
    from run_tagger.keys import KeyStore
    from run_tagger.portkey import PortkeyClient
    from run_tagger.publisher import EventBuilder

Outcome = Literal["tagged", "dead_lettered", "duplicate"]
# A request is not started with less time than this left before the deadline.
MIN_START_SECONDS = 1.0
# A last delivery is dead-lettered only with this much time left before the function's timeout: with less,
# a batch of them could run the invocation out of time, and SQS moves them anyway.
DEAD_LETTER_SECONDS = 1.0


class LambdaContextLike(Protocol):
    def get_remaining_time_in_millis(self) -> int: ...


class OutcomeLog(Protocol):
    """Where the pipeline reports each message's outcome (Powertools Logger and Metrics in the function)."""

    def tagged(self, parsed: ParsedMessage, message_id: str, latency_ms: float) -> None: ...
    def duplicate(self, parsed: ParsedMessage, message_id: str) -> None: ...
    def not_remembered(self, parsed: ParsedMessage, message_id: str) -> None: ...
    def failed(
        self, error: TagRunError, message_id: str, *, dead_lettered: bool, last_delivery: bool = False
    ) -> None: ...
    def crashed(self, message_id: str, *, last_delivery: bool = False) -> None: ...


@dataclass(frozen=True, slots=True)
class PipelineDeps:
    keys: KeyStore
    portkey: PortkeyClient
    builder: EventBuilder
    events: EventBatcher
    dead_letters: DeadLetterQueue | None
    log: OutcomeLog
    dedup: Deduplicator | None = None


class TagRunPipeline:
    """Processes one record at a time; safe to call from several threads at once."""

    def __init__(
        self,
        deps: PipelineDeps,
        *,
        reserve_seconds: float = 2.0,
        max_receive_count: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._deps = deps
        self._max_receive_count = max_receive_count
        # Time kept back from the deadline for publishing or dead-lettering after Portkey answers.
        self._reserve = reserve_seconds
        self._clock = clock

    def handle_record(self, record: SQSRecord, lambda_context: LambdaContextLike | None = None) -> Outcome:
        """Powertools' record handler: returns to delete the message, raises to have it redelivered."""
        parsed: ParsedMessage | None = None
        permanent: PermanentError | None = None
        event_sent = False
        deadline = self._deadline(lambda_context)
        try:
            try:
                parsed = parse_message(record.body, record.message_id)
                latency_ms = self._tag_once(parsed, deadline, record.message_id)
            except PermanentError as error:
                permanent = error
                self._publish_failure(record, parsed, error)
                event_sent = True
                self._keep(record, error)
                return "dead_lettered"
        except TransientError as error:
            # A permanent failure whose event or dead letter could not be sent keeps its own reason.
            reason: TagRunError = error
            if permanent is not None:
                reason = (
                    permanent if event_sent else permanent.noted("its Run Tag Failed event was not published")
                )
            last = self._is_last_delivery(record)
            if last and self._dead_letter(record, reason, deadline):
                return "dead_lettered"
            self._deps.log.failed(error, record.message_id, dead_lettered=False, last_delivery=last)
            raise
        except PermanentError:
            raise  # without a DLQ: already reported by _keep
        except Exception:
            self._deps.log.crashed(record.message_id, last_delivery=self._is_last_delivery(record))
            raise
        if latency_ms is None:
            self._deps.log.duplicate(parsed, record.message_id)
            return "duplicate"
        self._deps.log.tagged(parsed, record.message_id, latency_ms)
        return "tagged"

    def _tag_once(self, parsed: ParsedMessage, deadline: float, message_id: str) -> float | None:
        """Tag unless the de-duplication key already completed; None when it had."""
        if self._deps.dedup is None:
            return self.tag(parsed, deadline)
        once = self._deps.dedup.once(parsed.scoped_key, lambda: {"latency_ms": self.tag(parsed, deadline)})
        if once.ran and not once.remembered:
            self._deps.log.not_remembered(parsed, message_id)
        return float(once.result["latency_ms"]) if once.ran else None

    def tag(self, parsed: ParsedMessage, deadline: float) -> float:
        """Modify the run through Portkey and publish `Run Tagged`; returns Portkey's latency in ms.

        Raises a `TagRunError` for every failure.
        """
        deps = self._deps
        request = parsed.request
        left = deadline - self._clock()
        if left < MIN_START_SECONDS:
            raise DeadlineExceeded(f"{left:.1f}s left in the invocation: request not started")
        keys = deps.keys.keys_for(request.tenant)
        started = self._clock()
        try:
            run = deps.portkey.modify_run(
                request.thread_id, request.run_id, request.metadata, headers=keys.headers(), deadline=deadline
            )
        except Unauthorized:
            # A rotated key heals itself: fetch the secret again, past the cache, and try once more.
            keys = deps.keys.keys_for(request.tenant, refresh=True)
            run = deps.portkey.modify_run(
                request.thread_id, request.run_id, request.metadata, headers=keys.headers(), deadline=deadline
            )
        latency_ms = (self._clock() - started) * 1000
        # With idempotency on, the lane records its completion next: the completions gatherer waits for it.
        deps.events.publish(
            deps.builder.run_tagged(run_to_json(run), request), then_completes=deps.dedup is not None
        )
        return latency_ms

    def _publish_failure(
        self, record: SQSRecord, parsed: ParsedMessage | None, error: PermanentError
    ) -> None:
        """Publish `Run Tag Failed`; raises `PublishFailed` when EventBridge does not take it."""
        deps = self._deps
        deps.events.publish(
            deps.builder.run_tag_failed(parsed.request if parsed else None, error, record.message_id)
        )

    def _keep(self, record: SQSRecord, error: PermanentError) -> None:
        """Keep the body in the DLQ with its reason; without a DLQ, fail the item."""
        deps = self._deps
        if deps.dead_letters is None:
            deps.log.failed(error, record.message_id, dead_lettered=False)
            raise error
        _send_dead_letter(deps.dead_letters, record, error)
        deps.log.failed(error, record.message_id, dead_lettered=True)

    def handle_held_back(
        self, record: SQSRecord, blocker: SQSRecord, lambda_context: LambdaContextLike | None = None
    ) -> bool:
        """A record not started because `blocker`, earlier in its lane, failed: True when it was its last
        delivery and it is now in the DLQ, as `held_back`; False: it is left to the queue. Never raises."""
        try:
            # A blocker failing its own last delivery goes to the DLQ by SQS's move, and so do the records
            # behind it, after it: a FIFO group keeps its order there.
            if not self._is_last_delivery(record) or self._is_last_delivery(blocker):
                return False
            error = HeldBack(
                "held back behind an earlier failed request for the same run, de-duplication key or "
                f"message group (message {blocker.message_id})"
            )
            if self._dead_letter(record, error, self._deadline(lambda_context)):
                return True
            self._deps.log.failed(error, record.message_id, dead_lettered=False, last_delivery=True)
            return False
        except Exception:
            self._deps.log.crashed(record.message_id, last_delivery=True)
            return False

    def _is_last_delivery(self, record: SQSRecord) -> bool:
        """Whether SQS moves the message to the DLQ (without its reason) if this delivery fails."""
        if self._max_receive_count is None or self._deps.dead_letters is None:
            return False
        try:
            return int(record.attributes.approximate_receive_count) >= self._max_receive_count
        except (KeyError, TypeError, ValueError):
            return False

    def _dead_letter(self, record: SQSRecord, reason: TagRunError, deadline: float) -> bool:
        """Keep the message in the DLQ with `reason` (and log it so), if there is time for it before the
        function's own timeout; False when there is not, or the DLQ does not take it (SQS's move remains)."""
        dead_letters = self._deps.dead_letters
        if dead_letters is None or deadline + self._reserve - self._clock() < DEAD_LETTER_SECONDS:
            return False
        try:
            _send_dead_letter(dead_letters, record, reason)
        except PublishFailed:
            return False
        self._deps.log.failed(reason, record.message_id, dead_lettered=True)
        return True

    def _deadline(self, context: LambdaContextLike | None) -> float:
        """When Portkey must have answered, leaving `reserve` seconds to publish or dead-letter."""
        if context is None:
            return float("inf")
        return self._clock() + context.get_remaining_time_in_millis() / 1000 - self._reserve


def _send_dead_letter(dead_letters: DeadLetterQueue, record: SQSRecord, reason: TagRunError) -> None:
    """The record's body to the DLQ with `reason`; raises `PublishFailed` when the DLQ does not take it."""
    dead_letters.send(
        record.body, reason, message_id=record.message_id, group_id=record.attributes.message_group_id
    )
