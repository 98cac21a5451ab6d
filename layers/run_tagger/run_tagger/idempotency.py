"""Exactly one event per request: Powertools idempotency on the de-duplication key (DESIGN §2).

A request claims its key (a conditional PutItem) before Portkey is called, so a late duplicate can
never re-apply old metadata; the successes of the lanes that finish together are then recorded in one
BatchWriteItem (`run_tagger.completions`). Only successes are recorded: Powertools deletes the record
when the work raises, so a permanent failure redriven from the DLQ after a fix is processed again.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

from run_tagger.errors import TransientError

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext
    from mypy_boto3_dynamodb import DynamoDBClient

    from run_tagger.batching import Lanes

# How long a completed request is remembered: a day covers SQS redeliveries and producers' resends.
REMEMBER_SECONDS = 24 * 60 * 60


class Once(NamedTuple):
    """What `Deduplicator.once` did: ran the work now (or found it done), and whether that is remembered."""

    ran: bool
    result: dict[str, Any]
    remembered: bool = True


class DuplicateInProgress(TransientError):
    """Another delivery of the same request is being processed right now: try again later."""

    code = "duplicate_in_progress"


class IdempotencyUnavailable(TransientError):
    """The idempotency table could not be read or written."""

    code = "idempotency_unavailable"


class Deduplicator:
    """Runs the work of a de-duplication key at most once (until it succeeds), backed by DynamoDB."""

    def __init__(self, table_name: str, client: DynamoDBClient, lanes: Lanes) -> None:
        from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig, idempotent_function

        from run_tagger.completions import BatchedCompletions

        self._config = IdempotencyConfig(
            event_key_jmespath="key",
            raise_on_no_idempotency_key=True,
            expires_after_seconds=REMEMBER_SECONDS,
        )
        persistence = BatchedCompletions(table_name, client, lanes)
        self._once = idempotent_function(
            data_keyword_argument="claim",
            persistence_store=persistence,
            config=self._config,
            key_prefix="run-tagger.tag",
        )(_perform)

    def register_lambda_context(self, context: LambdaContext) -> None:
        """Lets an in-progress record expire with the invocation, so a crash does not block the key."""
        self._config.register_lambda_context(context)

    def once(self, key: str, work: Callable[[], dict[str, Any]]) -> Once:
        """Runs `work` unless the key already completed (then `ran` is False and `result` the saved one)."""
        from aws_lambda_powertools.utilities.idempotency.exceptions import (
            IdempotencyAlreadyInProgressError,
            IdempotencyPersistenceLayerError,
        )

        done: list[dict[str, Any]] = []

        def record() -> dict[str, Any]:
            done.append(work())
            return done[0]

        try:
            result = self._once(claim={"key": key}, work=record)
        except IdempotencyAlreadyInProgressError:
            raise DuplicateInProgress(f"request {key!r} is being processed by another delivery") from None
        except IdempotencyPersistenceLayerError as exc:
            if done:
                # The work is done (its event published); only remembering it failed. Failing the item
                # would publish again on the next delivery: report the success, not remembered.
                return Once(True, done[0], remembered=False)
            cause = type(exc.__cause__).__name__
            raise IdempotencyUnavailable(f"idempotency table unavailable: {cause}") from None
        return Once(bool(done), dict(result))


def _perform(*, claim: dict[str, str], work: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    return work()
