"""The typed error hierarchy of run-tagger.

Every failure a request can meet is one of these. The root carries what the pipeline needs to decide
the message's fate (`code`, `retryable`) and what a `Run Tag Failed` event reports (`status`).
Messages never carry key values.
"""

from __future__ import annotations

import copy
from typing import ClassVar, Self


class TagRunError(Exception):
    """Root of run-tagger's errors: `code` names the failure, `retryable` decides its fate."""

    code: ClassVar[str] = "internal_error"
    retryable: ClassVar[bool] = False

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status

    def noted(self, note: str) -> Self:
        """The same error, its message followed by `note`."""
        amended = copy.copy(self)
        amended.message = f"{self.message} ({note})"
        amended.args = (amended.message,)
        return amended

    def to_detail(self) -> dict[str, object]:
        """The `error` object of a `Run Tag Failed` event."""
        return {
            "code": self.code,
            "message": self.message,
            "status": self.status,
            "retryable": self.retryable,
        }


class PermanentError(TagRunError):
    """Retrying cannot help: the message goes to the DLQ at once with its reason."""


class TransientError(TagRunError):
    """Retrying may help: the item fails and SQS redelivers it."""

    code = "transient_error"
    retryable = True


class InvalidRequest(PermanentError):
    """The message is not a valid tag-run request (§1.1), or names an unknown tenant."""

    code = "invalid_request"


class InvalidConfiguration(PermanentError):
    """A keys secret is missing, not JSON, or lacks `api_key` and a routing key."""

    code = "invalid_configuration"


class RunNotFound(PermanentError):
    """Portkey answered 404: the thread or run does not exist (or the backend no longer serves it)."""

    code = "run_not_found"


class PortkeyRejected(PermanentError):
    """Portkey refused the request with a 4xx that retrying cannot change."""

    code = "portkey_rejected"


class Unauthorized(PermanentError):
    """Portkey answered 401/403, even with freshly fetched keys."""

    code = "unauthorized"


class InvalidResponse(PermanentError):
    """Portkey's answer is not JSON, not a valid run, or not the run asked for."""

    code = "invalid_response"


class PortkeyUnavailable(TransientError):
    """Portkey answered 408, 409, 429 or 5xx, timed out, or could not be reached."""

    code = "portkey_unavailable"


class KeysUnavailable(TransientError):
    """Secrets Manager could not be read (throttling, network, service error)."""

    code = "keys_unavailable"


class PublishFailed(TransientError):
    """EventBridge or SQS did not take what was sent to it."""

    code = "publish_failed"


class HeldBack(TransientError):
    """An earlier request of the same lane (run, de-duplication key or FIFO group) failed: not started."""

    code = "held_back"


class DeadlineExceeded(TransientError):
    """Too little time left in the invocation to finish the request: it was not started."""

    code = "deadline_exceeded"
