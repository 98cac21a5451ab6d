"""The embedded stack in a process of its own, so that its CPU and its GIL stay out of the handler's figures.

moto's server and the Portkey stand-in are busy while the handler runs (every PutEvents, DynamoDB and
Portkey call is served by them). In the handler's process they would compete with it for the GIL and be
counted in its CPU time; in a child process they cost what a remote AWS and a remote Portkey cost: time
on the wire. The parent drives the child over its stdin and stdout, one JSON object per line.

    python -m benchmarks.stack_process --latency-ms 100   # then: {"op": "counts"} ...
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path
from types import TracebackType
from typing import IO, TYPE_CHECKING, Any, Self

import boto3

from local.aws import DUMMY_CREDENTIAL, StackResources

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

    from local.stack import EmbeddedStack

ROOT = Path(__file__).resolve().parents[1]


def serve(latency_ms: int, commands: IO[str], answers: IO[str]) -> int:
    """The child: start the stack, describe it, then answer commands until `commands` closes."""
    from local.stack import EmbeddedStack

    def answer(payload: dict[str, Any]) -> None:
        answers.write(json.dumps(payload) + "\n")
        answers.flush()

    with EmbeddedStack.running(latency_ms=latency_ms) as stack:
        _detach_inspection_queue(stack)
        answer(
            {
                "environment": stack.function_environment(),
                "resources": asdict(stack.resources),
                "region": stack.aws.region,
                "endpoint_url": stack.aws.endpoint_url,
            }
        )
        for line in commands:
            command = json.loads(line)
            match command.get("op"):
                case "latency":
                    stack.portkey.latency_ms = int(command["ms"])
                    answer({"latency_ms": stack.portkey.latency_ms})
                case "counts":
                    answer(
                        {
                            "connections_opened": stack.portkey.connections_opened,
                            "requests": len(stack.portkey.requests),
                        }
                    )
                case "clear":
                    stack.portkey.clear_requests()
                    answer({})
                case "cpu":
                    answer({"cpu_seconds": time.process_time()})
                case other:
                    answer({"error": f"unknown op {other!r}"})
    return 0


def _detach_inspection_queue(stack: EmbeddedStack) -> None:
    """Stop copying published events to the local stack's inspection queue; the benchmark reads none.

    moto delivers an event to its rules' targets inside PutEvents (EventBridge does it after answering),
    and its SendMessage slows down as a queue grows: with thousands of events collected, PutEvents would
    cost more with every batch. Without the target, the rules are still matched on every PutEvents.
    """
    sqs, events = stack.aws.client("sqs"), stack.aws.client("events")
    queue_url = stack.resources.inspection_queue_url
    inspection_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])
    arn = inspection_arn["Attributes"]["QueueArn"]
    for rule in events.list_rules(EventBusName=stack.resources.bus_name)["Rules"]:
        targets = events.list_targets_by_rule(Rule=rule["Name"], EventBusName=stack.resources.bus_name)
        ids = [target["Id"] for target in targets["Targets"] if target["Arn"] == arn]
        if ids:
            events.remove_targets(Rule=rule["Name"], EventBusName=stack.resources.bus_name, Ids=ids)


class StackProcess:
    """The parent's handle on the child: the function's environment, the queue, the stand-in's counts."""

    def __init__(self, *, latency_ms: int) -> None:
        self._latency_ms = latency_ms
        self._child: subprocess.Popen[str] | None = None
        self._description: dict[str, Any] = {}
        self._sqs: SQSClient | None = None

    def start(self) -> Self:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        env.pop("AWS_PROFILE", None)
        self._child = subprocess.Popen(  # noqa: S603 - this interpreter, a fixed module
            [sys.executable, "-m", "benchmarks.stack_process", "--latency-ms", str(self._latency_ms)],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self._description = self._read()
        return self

    def stop(self) -> None:
        child, self._child = self._child, None
        if child is None:
            return
        if child.stdin is not None:
            child.stdin.close()  # the child's command loop ends, and the stack stops cleanly
        try:
            child.wait(timeout=15)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
        if child.stdout is not None:
            child.stdout.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def resources(self) -> StackResources:
        return StackResources(**self._description["resources"])

    @property
    def region(self) -> str:
        return str(self._description["region"])

    @property
    def portkey_base_url(self) -> str:
        return str(self._description["environment"]["PORTKEY_BASE_URL"])

    def function_environment(self, **overrides: str) -> dict[str, str]:
        """What `EmbeddedStack.function_environment` gives the function, plus `overrides`."""
        return {**self._description["environment"], **overrides}

    def sqs(self) -> SQSClient:
        """An SQS client of the harness's own session: its calls are never counted as the function's."""
        if self._sqs is None:
            session = boto3.Session(
                aws_access_key_id=DUMMY_CREDENTIAL,
                aws_secret_access_key=DUMMY_CREDENTIAL,
                aws_session_token=DUMMY_CREDENTIAL,
                region_name=self.region,
            )
            self._sqs = session.client("sqs", endpoint_url=str(self._description["endpoint_url"]))
        return self._sqs

    def set_latency(self, milliseconds: int) -> None:
        self._call(op="latency", ms=milliseconds)

    def connections_opened(self) -> int:
        """TCP connections the stand-in accepted since the last `clear_requests()`."""
        return int(self._call(op="counts")["connections_opened"])

    def clear_requests(self) -> None:
        self._call(op="clear")

    def cpu_seconds(self) -> float:
        """The child's process CPU time so far: moto's and the stand-in's work, serving every caller."""
        return float(self._call(op="cpu")["cpu_seconds"])

    def _call(self, **command: object) -> dict[str, Any]:
        if self._child is None or self._child.stdin is None:
            raise RuntimeError("the stack process is not running")
        self._child.stdin.write(json.dumps(command) + "\n")
        self._child.stdin.flush()
        answer = self._read()
        if "error" in answer:
            raise RuntimeError(f"stack process: {answer['error']}")
        return answer

    def _read(self) -> dict[str, Any]:
        if self._child is None or self._child.stdout is None:
            raise RuntimeError("the stack process is not running")
        line = self._child.stdout.readline()
        if not line:
            raise RuntimeError(f"the stack process ended (exit code {self._child.poll()})")
        answer: dict[str, Any] = json.loads(line)
        return answer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.stack_process", description=__doc__)
    parser.add_argument("--latency-ms", type=int, default=0, help="the stand-in's delay before answering")
    args = parser.parse_args(argv)
    return serve(args.latency_ms, sys.stdin, sys.stdout)


if __name__ == "__main__":
    sys.exit(main())
