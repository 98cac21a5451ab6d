"""The dead-letter queue: where a permanent failure's original body waits, with its reason."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from run_tagger.errors import PublishFailed, TagRunError

if TYPE_CHECKING:
    from botocore.exceptions import ClientError
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import MessageAttributeValueTypeDef

MAX_ATTRIBUTE_CHARS = 1000
SHORT_CHARS = 100  # the reason's start, when the whole one does not fit beside the body
# SQS accepts only these characters in attribute values (XML's): anything else is replaced.
_NOT_ALLOWED = re.compile("[^\x09\x0a\x0d\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


class DeadLetterQueue:
    """Sends a message's original body, unchanged, with `error_code` and `error_message` attributes."""

    def __init__(self, client: SQSClient, queue_url: str) -> None:
        self._client = client
        self._queue_url = queue_url
        self._fifo = queue_url.endswith(".fifo")

    @property
    def queue_url(self) -> str:
        return self._queue_url

    def send(self, body: str, error: TagRunError, *, message_id: str, group_id: str | None = None) -> None:
        """Dead-letter one message; raises `PublishFailed` when SQS does not take it."""
        from botocore.exceptions import BotoCoreError, ClientError

        attributes: dict[str, MessageAttributeValueTypeDef] = {
            "error_code": {"DataType": "String", "StringValue": error.code},
            "error_message": {
                "DataType": "String",
                "StringValue": _attribute_text(error.message),
            },
            "source_message_id": {"DataType": "String", "StringValue": message_id},
        }
        if error.status is not None:
            attributes["error_status"] = {"DataType": "Number", "StringValue": str(error.status)}
        # SQS counts attributes in a message's size: a body near the limit cannot carry its whole reason.
        # It goes with the code, the reason's start and the source id then, or bare: the body is what
        # must not be lost (a permanent failure's Run Tag Failed event, published first, has the whole
        # reason; the function's log line has it in every case).
        short: dict[str, MessageAttributeValueTypeDef] = {
            "error_code": attributes["error_code"],
            "error_message": {
                "DataType": "String",
                "StringValue": _attribute_text(error.message[:SHORT_CHARS]),
            },
            "source_message_id": attributes["source_message_id"],
        }
        bare: dict[str, MessageAttributeValueTypeDef] = {}
        for attempt in (attributes, short, bare):
            try:
                self._send(body, attempt, message_id=message_id, group_id=group_id)
                return
            except (ClientError, BotoCoreError) as exc:
                if attempt and isinstance(exc, ClientError) and _too_large(exc):
                    continue  # the same body, with less beside it
                raise PublishFailed(
                    f"could not send the message to the dead-letter queue: {type(exc).__name__}"
                ) from None

    def _send(
        self,
        body: str,
        attributes: dict[str, MessageAttributeValueTypeDef],
        *,
        message_id: str,
        group_id: str | None,
    ) -> None:
        if self._fifo:
            self._client.send_message(
                QueueUrl=self._queue_url,
                MessageBody=body,
                MessageAttributes=attributes,
                MessageGroupId=group_id or "dead-letters",
                MessageDeduplicationId=message_id,
            )
        else:
            self._client.send_message(
                QueueUrl=self._queue_url, MessageBody=body, MessageAttributes=attributes
            )


def _too_large(exc: ClientError) -> bool:
    """Whether SQS refused the message for its size (its attributes count in it)."""
    error = exc.response.get("Error", {})
    return error.get("Code") == "InvalidParameterValue" and "shorter than" in error.get("Message", "")


def _attribute_text(text: str) -> str:
    """At most MAX_ATTRIBUTE_CHARS characters that SQS accepts in an attribute value."""
    return _NOT_ALLOWED.sub("?", text[:MAX_ATTRIBUTE_CHARS]) or "-"
