"""The handler as Lambda runs it: tracing and metrics on, wrapt without its C extension (as in the layer).

Everywhere else tracing and metrics are off, as on the local stack. Here a fresh interpreter gets the
environment Lambda's runtime gives the function (LAMBDA_TASK_ROOT, a trace header, the X-Ray daemon's
address, which is a UDP socket of this test) and handles one batch from the stack's queue.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from local.aws import DEFAULT_KEYS
from local.portkey import PortkeyStandIn
from local.stack import FUNCTION_DIR, ROOT, EmbeddedStack, lambda_runtime_environment
from tests.support import a_request, one_event

TRACE_HEADER = "Root=1-6745a1b2-0123456789abcdef01234567;Parent=53995c3f42cd8ad8;Sampled=1"
# Feeds the stack's queue to app.lambda_handler once, as the event source mapping does.
POLL_ONCE = """
import json, sys, boto3
from local.poller import QueuePoller
from local.stack import load_function
queue_url, queue_arn, region = sys.argv[1:4]
outcome = QueuePoller(
    boto3.client("sqs"), queue_url, queue_arn, region, load_function().lambda_handler, wait_seconds=0
).poll_once()
print(json.dumps({"outcome": [outcome.received, outcome.deleted, outcome.failed, outcome.error]}))
"""


@dataclass(frozen=True)
class Invocation:
    stdout: str
    stderr: str
    datagrams: list[bytes]  # what reached the X-Ray daemon's address


@pytest.fixture
def xray_daemon() -> Iterator[socket.socket]:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as daemon:
        daemon.bind(("127.0.0.1", 0))
        daemon.settimeout(0.0)
        yield daemon


def invoke_as_deployed(stack: EmbeddedStack, daemon: socket.socket, **overrides: str) -> Invocation:
    host, port = daemon.getsockname()
    environment = {
        **{name: value for name, value in os.environ.items() if not name.startswith(("AWS_", "POWERTOOLS_"))},
        **stack.function_environment(**overrides),
        **lambda_runtime_environment(xray_daemon_address=f"{host}:{port}"),
        "_X_AMZN_TRACE_ID": TRACE_HEADER,
        "WRAPT_DISABLE_EXTENSIONS": "true",
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(FUNCTION_DIR)]),
    }
    for switch in ("POWERTOOLS_METRICS_DISABLED", "POWERTOOLS_TRACE_DISABLED"):
        environment.pop(switch)
    resources = stack.resources
    completed = subprocess.run(  # noqa: S603 - this interpreter, a fixed script
        [sys.executable, "-c", POLL_ONCE, resources.queue_url, resources.queue_arn, stack.aws.region],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    datagrams = []
    while True:
        try:
            datagrams.append(daemon.recv(65536))
        except BlockingIOError:
            break
    return Invocation(completed.stdout, completed.stderr, datagrams)


def test_with_tracing_and_metrics_on_a_request_is_tagged_traced_and_counted(
    stack: EmbeddedStack, xray_daemon: socket.socket
) -> None:
    # Given a request on the queue
    stack.send(a_request())
    # When the handler takes it in the environment Lambda gives it
    invocation = invoke_as_deployed(stack, xray_daemon)
    # Then it is tagged and published
    assert '"outcome": [1, 1, [], null]' in invocation.stdout
    assert one_event(stack.published(), "Run Tagged")["detail"]["run"]["id"] == "run_it1"
    # And the handler's subsegment, with the Portkey call inside it, went to the X-Ray daemon
    segments = [json.loads(datagram.split(b"\n", 1)[1]) for datagram in invocation.datagrams]
    names = {segment["name"] for segment in segments}
    assert "## lambda_handler" in names
    assert any(
        segment.get("http", {}).get("request", {}).get("url", "").endswith("/runs/run_it1")
        for segment in segments
    )
    # And the metrics were printed in CloudWatch's embedded metric format
    metric_lines = [json.loads(line) for line in invocation.stdout.splitlines() if '"_aws"' in line]
    assert metric_lines
    assert metric_lines[0]["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "RunTagger"


def test_with_tracing_and_metrics_on_no_key_reaches_a_trace_a_metric_or_a_log(
    stack: EmbeddedStack, xray_daemon: socket.socket
) -> None:
    # Given a request on the queue
    stack.send(a_request())
    # When the handler takes it with tracing and metrics on
    invocation = invoke_as_deployed(stack, xray_daemon)
    # Then no key value appears in what it sent to X-Ray or wrote out
    assert invocation.datagrams
    everything = [invocation.stdout, invocation.stderr, *(d.decode() for d in invocation.datagrams)]
    for key in DEFAULT_KEYS.values():
        assert not [text for text in everything if key in text]


def test_at_debug_with_event_logging_no_key_reaches_the_log(
    stack: EmbeddedStack, portkey: PortkeyStandIn, xray_daemon: socket.socket
) -> None:
    # Given DEBUG and event logging set before the function is imported, and a key Portkey refuses
    portkey.accept_api_keys({"pk-someone-else"})
    stack.send(a_request())
    stack.send("{bad")
    # When the handler takes the batch
    invocation = invoke_as_deployed(
        stack, xray_daemon, POWERTOOLS_LOG_LEVEL="DEBUG", POWERTOOLS_LOGGER_LOG_EVENT="true"
    )
    # Then the event and both outcomes were logged, and no key value with them
    assert '"Records"' in invocation.stdout
    assert "unauthorized" in invocation.stdout
    assert "invalid_request" in invocation.stdout
    for key in DEFAULT_KEYS.values():
        assert key not in invocation.stdout + invocation.stderr
