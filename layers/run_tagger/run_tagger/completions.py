"""The completions of a batch's requests, written together: BatchWriteItem calls of up to ten.

Powertools' DynamoDB persistence layer records each success with an UpdateItem of its own: ten
concurrent requests cost ten more round trips at the end of the batch. This layer is Powertools' own,
with the one step a custom persistence layer may replace, `_update_record`, handing the completed
record to a `Gatherer`: the lanes that finish together share one BatchWriteItem, each waiting for its
own record's fate as it did for its UpdateItem. Claims (the conditional PutItem before Portkey is
called), reads and deletes stay Powertools'.

A completed record is written whole (key, status, expiry, result), which is what the UpdateItem left
readable: Powertools reads nothing else of a completed record.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.utilities.idempotency.persistence.dynamodb import DynamoDBPersistenceLayer

from run_tagger.batching import Gatherer, Lanes

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.idempotency.persistence.datarecord import DataRecord
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef, WriteRequestOutputTypeDef

# BatchWriteItem takes up to 25 items, but the lanes that reach here together are those one PutEvents
# call of up to ten released (the gatherer holds its items for them only): ten at most.
MAX_ITEMS_PER_CALL = 10
ATTEMPTS = 4  # a call and up to three resends of what DynamoDB left unprocessed
BACKOFF_SECONDS = 0.05  # the first resend's base delay, doubled each time, with full jitter

Item = dict[str, "AttributeValueTypeDef"]


class CompletionNotSaved(Exception):
    """DynamoDB did not take a completed record (the request's work is done; only remembering it failed)."""


class BatchedCompletions(DynamoDBPersistenceLayer):
    """Powertools' DynamoDB persistence layer, its completions written in shared BatchWriteItem calls."""

    def __init__(
        self,
        table_name: str,
        client: DynamoDBClient,
        lanes: Lanes,
        *,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__(table_name=table_name, boto3_client=client)
        self._sleep = sleep
        self._gatherer: Gatherer[Item] = Gatherer(
            lanes,
            self._write,
            max_items=MAX_ITEMS_PER_CALL,
            on_error=lambda exc: CompletionNotSaved(_call_failed(exc)),
            follower=True,
        )

    def _update_record(self, data_record: DataRecord) -> None:
        """Record a success: raises `CompletionNotSaved` when DynamoDB would not take it."""
        self._gatherer.submit(self._completed_item(data_record))

    def _completed_item(self, record: DataRecord) -> Item:
        item: Item = {
            **self._get_key(record.idempotency_key),
            self.expiry_attr: {"N": str(record.expiry_timestamp)},
            self.status_attr: {"S": record.status},
            self.data_attr: {"S": str(record.response_data)},
        }
        if self.payload_validation_enabled and record.payload_hash:
            item[self.validation_key_attr] = {"S": record.payload_hash}
        return item

    def _write(self, items: Sequence[Item]) -> list[Exception | None]:
        """Put `items`, resending what DynamoDB leaves unprocessed; one outcome per item."""
        left = {self._key_of(item): index for index, item in enumerate(items)}
        for attempt in range(ATTEMPTS):
            if attempt:
                self._sleep(random.uniform(0, BACKOFF_SECONDS * 2 ** (attempt - 1)))  # noqa: S311 - jitter
            try:
                answer = self.client.batch_write_item(
                    RequestItems={
                        self.table_name: [{"PutRequest": {"Item": items[i]}} for i in left.values()]
                    }
                )
            except Exception as exc:  # the items an earlier attempt wrote stay written
                return self._failed(len(items), left.values(), _call_failed(exc))
            unprocessed: list[WriteRequestOutputTypeDef] = (answer.get("UnprocessedItems") or {}).get(
                self.table_name, []
            )
            left = {
                key: left[key]
                for request in unprocessed
                if (key := self._key_of(request.get("PutRequest", {}).get("Item", {}))) in left
            }
            if not left:
                return [None] * len(items)
        return self._failed(
            len(items), left.values(), f"DynamoDB left the record unprocessed {ATTEMPTS} times"
        )

    @staticmethod
    def _failed(count: int, failed: Iterable[int], reason: str) -> list[Exception | None]:
        outcomes: list[Exception | None] = [None] * count
        for index in failed:
            outcomes[index] = CompletionNotSaved(reason)
        return outcomes

    def _key_of(self, item: dict[str, Any]) -> tuple[str, ...]:
        names = [self.key_attr] if self.sort_key_attr is None else [self.key_attr, self.sort_key_attr]
        return tuple(str(item.get(name)) for name in names)


def _call_failed(exc: Exception) -> str:
    return f"BatchWriteItem failed: {type(exc).__name__}"  # the error's type only: its text may quote items
