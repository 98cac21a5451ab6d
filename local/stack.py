"""The embedded stack: the AWS emulator, the Portkey stand-in and the real handler, wired together."""

from __future__ import annotations

import contextlib
import importlib
import json
import shlex
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from local.aws import EmulatedAws, StackNames, StackResources, create_stack, drain, read_published_events
from local.poller import Handler, QueuePoller
from local.portkey import PortkeyStandIn

ROOT = Path(__file__).resolve().parents[1]
FUNCTION_DIR = ROOT / "functions" / "tag_run"


def lambda_runtime_environment(xray_daemon_address: str = "127.0.0.1:2000") -> dict[str, str]:
    """What Lambda's python3.13 runtime sets around the function that changes how its libraries behave.

    LAMBDA_TASK_ROOT is how Powertools and the X-Ray SDK know they run in Lambda: tracing turns on, and
    the SDK uses its local sampler instead of building a botocore client for sampling rules. Lambda's
    X-Ray daemon listens on a link-local address; the default here is loopback.
    """
    return {
        "LAMBDA_TASK_ROOT": str(FUNCTION_DIR),
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
        "_HANDLER": "app.lambda_handler",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_XRAY_DAEMON_ADDRESS": xray_daemon_address,
        "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
    }


def load_function() -> ModuleType:
    """The function's entry module (`functions/tag_run/app.py`), imported as Lambda imports it."""
    if str(FUNCTION_DIR) not in sys.path:
        sys.path.insert(0, str(FUNCTION_DIR))
    return importlib.import_module("app")


@dataclass(frozen=True)
class EmbeddedStack:
    """One stack's resources on a running emulator, and the stand-in the function talks to."""

    aws: EmulatedAws
    portkey: PortkeyStandIn
    resources: StackResources

    @classmethod
    @contextlib.contextmanager
    def running(
        cls, *, runs: Sequence[Mapping[str, Any]] | None = None, fifo: bool = False, latency_ms: int = 0
    ) -> Iterator[EmbeddedStack]:
        """Start the emulator and the stand-in on loopback, create the stack, and stop both at the end."""
        with EmulatedAws() as aws, PortkeyStandIn(runs=runs, latency_ms=latency_ms) as portkey:
            yield cls.create(aws, portkey, fifo=fifo)

    @classmethod
    def create(
        cls, aws: EmulatedAws, portkey: PortkeyStandIn, *, fifo: bool = False, max_receive_count: int = 3
    ) -> EmbeddedStack:
        """A new stack with names of its own on an emulator that is already running."""
        resources = create_stack(
            aws, fifo=fifo, names=StackNames.suffixed(), max_receive_count=max_receive_count
        )
        return cls(aws, portkey, resources)

    def function_environment(self, **overrides: str) -> dict[str, str]:
        """The environment the template gives the function, pointed at the emulator and the stand-in."""
        return {
            **self.aws.environment(),
            **self.resources.function_environment(),
            "PORTKEY_BASE_URL": self.portkey.base_url,
            "PORTKEY_TIMEOUT_SECONDS": "5",
            "POWERTOOLS_SERVICE_NAME": "run-tagger",
            "POWERTOOLS_METRICS_NAMESPACE": "RunTagger",
            "POWERTOOLS_METRICS_DISABLED": "true",
            "POWERTOOLS_TRACE_DISABLED": "true",
            **overrides,
        }

    def poller(
        self,
        handler: Handler,
        *,
        batch_size: int = 10,
        timeout_seconds: float = 30.0,
        lose_delete: Callable[[str], bool] | None = None,
    ) -> QueuePoller:
        """Lambda's SQS event source mapping for this stack's queue."""
        return QueuePoller(
            self.aws.client("sqs"),
            self.resources.queue_url,
            self.resources.queue_arn,
            self.aws.region,
            handler,
            batch_size=batch_size,
            batching_window_seconds=1.0 if batch_size > 10 else 0.0,
            function_timeout_seconds=timeout_seconds,
            wait_seconds=0,
            lose_delete=lose_delete,
        )

    def send(self, body: str | Mapping[str, Any], **attributes: str) -> str:
        """Send a message body (a request as JSON, or any text) to the queue; returns its messageId."""
        text = body if isinstance(body, str) else json.dumps(body)
        extra: dict[str, Any] = {}
        if attributes:
            extra["MessageAttributes"] = {
                name: {"DataType": "String", "StringValue": value} for name, value in attributes.items()
            }
        answer = self.aws.client("sqs").send_message(
            QueueUrl=self.resources.queue_url, MessageBody=text, **extra
        )
        return answer["MessageId"]

    def send_via_eventbridge(
        self, request: Mapping[str, Any], *, source: str = "com.example.producer"
    ) -> str:
        """Send a request as a `Tag Run Requested` event; the bus rule routes it to the queue."""
        answer = self.aws.client("events").put_events(
            Entries=[
                {
                    "Source": source,
                    "DetailType": "Tag Run Requested",
                    "Detail": json.dumps(request),
                    "EventBusName": self.resources.bus_name,
                }
            ]
        )
        return str(answer["Entries"][0]["EventId"])

    def send_via_sns(self, request: Mapping[str, Any]) -> str:
        """Publish a request to the topic the queue is subscribed to."""
        answer = self.aws.client("sns").publish(
            TopicArn=self.resources.topic_arn, Message=json.dumps(request)
        )
        return answer["MessageId"]

    def published(self) -> list[dict[str, Any]]:
        """Events the function published since the last call (captured by the inspection rule)."""
        return read_published_events(self.aws, self.resources.inspection_queue_url)

    def dead_letters(self) -> list[dict[str, Any]]:
        """Messages in the DLQ since the last call (read and removed)."""
        return drain(self.aws, self.resources.dlq_url)

    def instructions(self, *, fifo: bool = False) -> str:
        """How to use this running stack from another shell: its environment, a request, the resources."""
        resources = self.resources
        group = " --group-id demo" if fifo else ""  # a FIFO queue takes no message without a group
        exports = [
            f"export {name}={shlex.quote(value)}"
            for name, value in sorted(self.function_environment().items())
        ]
        return "\n".join(
            [
                "The embedded stack is running; Ctrl-C stops it. In another shell, paste these lines",
                "(the emulator's endpoint, dummy credentials and the function's configuration):",
                *exports,
                "then send a request and feed the handler:",
                f"  .venv/bin/run-tagger emit --queue-url {resources.queue_url}{group}"
                " --thread thread_1 --run run_1 --meta team=search",
                f"  .venv/bin/python -m local poll --queue-url {resources.queue_url}",
                f"request queue:     {resources.queue_url}",
                f"request topic:     {resources.topic_arn}",
                f"dead-letter queue: {resources.dlq_url}",
                f"published events:  {resources.inspection_queue_url} (a rule copies every run event here)",
            ]
        )

    def queue_depth(self) -> int:
        """Messages still on the queue, visible or in flight."""
        attributes = self.aws.client("sqs").get_queue_attributes(
            QueueUrl=self.resources.queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]) + int(
            attributes["ApproximateNumberOfMessagesNotVisible"]
        )
