"""`make soak`: thousands of requests through the embedded stack under injected faults.

Every request carries a unique `request_id`, so its end state can be counted: published as
`Run Tagged`, or in the DLQ with its reason. Faults of every kind are injected into Portkey's
answers, some requests are invalid, some are sent twice, some deletions are lost (so SQS delivers
a processed message again), and the keys are rotated half-way. The soak passes only when no request
is lost and none is published twice.

By default the queue allows 50 receives, so transient faults are retried until they clear. With a low
`--max-receive-count` (and `--portkey-attempts 1`, so one fault fails a delivery) requests reach their
last delivery: the function dead-letters them with their reason, or SQS's redrive moves them.
With `--fifo` the queue is FIFO, one message group per run (ten requests to a run unless `--runs`
says otherwise), batches are of ten at most and nothing is sent twice (SQS would drop the copy). The
soak then also fails when Portkey is called for a request, or a run's metadata is set to it, after a
request of the same run sent later.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import sys
import time
from dataclasses import dataclass
from typing import Any

from local.aws import DEFAULT_KEYS, put_keys
from local.poller import QueuePoller
from local.portkey import Fault
from local.soak_report import SoakReport, runs_out_of_order
from local.stack import EmbeddedStack, load_function

_REQUEST_ID = re.compile(r"soak-\d+")
_RUN_PATH = re.compile(r".*/threads/([^/]+)/runs/([^/]+)")
THREAD_ID = "thread_soak"
# What Portkey may do to any answer: (fault, its share among faults). Permanent ones end in the DLQ.
_FAULTS: list[tuple[Fault, int]] = [
    (Fault.error(429, headers={"retry-after-ms": "5"}), 4),
    (Fault.error(429, headers={"Retry-After": "0"}), 2),
    (Fault.error(500), 3),
    (Fault.error(503), 3),
    (Fault.error(408), 1),
    (Fault.error(409), 1),
    (Fault.reset(), 2),
    (Fault.latency(30), 2),
    (Fault.slow_body(30), 1),
    (Fault.malformed_body(), 1),
    (Fault.wrong_run(), 1),
    (Fault.error(404), 1),
    (Fault.error(400), 1),
]


@dataclass(frozen=True)
class SoakRequest:
    number: int  # its metadata is {"n": str(number)}
    run_id: str  # also the message group on a FIFO queue
    body: str

    @property
    def request_id(self) -> str:
        return _request_id(self.number)


def _request_id(number: int) -> str:
    return f"soak-{number}"  # what _REQUEST_ID finds in a dead letter's body


def _requests(count: int, runs: int, rng: random.Random) -> list[SoakRequest]:
    """Valid requests for `runs` runs picked at random, and about 2 % invalid ones."""
    made = []
    for number in range(count):
        request_id = _request_id(number)
        run = f"run_{rng.randrange(runs)}"  # requests sharing a run exercise per-run order
        request = {
            "thread_id": THREAD_ID,
            "run_id": run,
            "metadata": {"n": str(number)},
            "request_id": request_id,
        }
        roll = rng.random()
        if roll < 0.01:
            body = f"not json {request_id}"
        elif roll < 0.02:
            body = json.dumps({**request, "thread_id": "../escape"})
        else:
            body = json.dumps(request)
        made.append(SoakRequest(number, run, body))
    return made


@dataclass(frozen=True)
class SoakOptions:
    fault_rate: float = 0.12
    seed: int = 7
    batch_size: int = 50
    max_receive_count: int = 50
    portkey_attempts: int = 4
    fifo: bool = False
    runs: int | None = None  # runs the requests are spread over; None: one per request, or per ten on FIFO
    wave: int = 1000  # messages sent before the queue is drained; the key rotates at the half-way wave
    progress: bool = False

    def runs_for(self, requests: int) -> int:
        return self.runs or (max(1, requests // 10) if self.fifo else requests)


def run_soak(requests: int, options: SoakOptions) -> tuple[SoakReport, list[str]]:
    """Run the soak; the process environment is restored afterwards."""
    saved = dict(os.environ)
    try:
        return _soak(requests, options)
    finally:
        os.environ.clear()
        os.environ.update(saved)
        load_function().reset()


def _soak(requests: int, options: SoakOptions) -> tuple[SoakReport, list[str]]:
    rng = random.Random(options.seed)
    report = SoakReport()
    with EmbeddedStack.running() as base:
        stack = EmbeddedStack.create(
            base.aws, base.portkey, fifo=options.fifo, max_receive_count=options.max_receive_count
        )
        os.environ.pop("AWS_PROFILE", None)
        os.environ.update(
            stack.function_environment(
                POWERTOOLS_LOG_LEVEL="ERROR", PORTKEY_MAX_ATTEMPTS=str(options.portkey_attempts)
            )
        )
        app = load_function()
        app.reset()
        made = _requests(requests, options.runs_for(requests), rng)
        outgoing = list(made)
        if not options.fifo:  # a FIFO queue would drop a body sent again (content-based de-duplication)
            outgoing += rng.sample(made, k=max(1, requests // 20))  # 5 % sent twice
        rng.shuffle(outgoing)
        report.sent, report.messages = requests, len(outgoing)

        def lose(_message_id: str) -> bool:
            lost = rng.random() < 0.02
            report.lost_deletes += lost
            return lost

        batch_size = min(options.batch_size, 10) if options.fifo else options.batch_size  # FIFO: 10 at most
        poller = stack.poller(app.lambda_handler, batch_size=batch_size, timeout_seconds=60, lose_delete=lose)
        # Waves keep the emulated queues short: moto scans a whole queue on every receive.
        for start in range(0, len(outgoing), options.wave):
            if start >= len(outgoing) // 2 and not report.rotated:
                _rotate_keys(stack)
                report.rotated = True
            _send(stack, outgoing[start : start + options.wave], fifo=options.fifo)
            _drain_wave(stack, poller, report, rng, fault_rate=options.fault_rate, batch_size=batch_size)
            _collect(stack, report)
            if options.progress:
                done = min(start + options.wave, len(outgoing))
                print(f"  {done}/{len(outgoing)} messages", file=sys.stderr, flush=True)
        if options.fifo:
            report.runs_out_of_order = _runs_out_of_order(stack, outgoing)
        report.left_on_queue = stack.queue_depth()
    return report, [request.request_id for request in made]


def _send(stack: EmbeddedStack, requests: list[SoakRequest], *, fifo: bool) -> None:
    sqs = stack.aws.client("sqs")
    for start in range(0, len(requests), 10):
        entries: list[Any] = []
        for index, request in enumerate(requests[start : start + 10]):
            entry = {"Id": str(index), "MessageBody": request.body}
            entries.append({**entry, "MessageGroupId": request.run_id} if fifo else entry)
        sqs.send_message_batch(QueueUrl=stack.resources.queue_url, Entries=entries)


def _runs_out_of_order(stack: EmbeddedStack, sent: list[SoakRequest]) -> int:
    calls = [
        (match[1], match[2], request.json.get("metadata") or {})
        for request in stack.portkey.requests
        if (match := _RUN_PATH.fullmatch(request.path)) and isinstance(request.json, dict)
    ]
    sent_at = {str(request.number): index for index, request in enumerate(sent)}
    return runs_out_of_order(THREAD_ID, sent_at, calls, stack.portkey.metadata_changes)


def _rotate_keys(stack: EmbeddedStack) -> None:
    """Half-way, the key changes: Portkey accepts only the new one, the function still caches the old."""
    put_keys(stack.aws, stack.resources.secret_id, {**DEFAULT_KEYS, "api_key": "pk-local-rotated"})
    stack.portkey.accept_api_keys({"pk-local-rotated"})


def _drain_wave(
    stack: EmbeddedStack,
    poller: QueuePoller,
    report: SoakReport,
    rng: random.Random,
    *,
    fault_rate: float,
    batch_size: int,
) -> None:
    faults, weights = zip(*_FAULTS, strict=True)
    idle = 0
    while idle < 2:
        # batch_size x fault_rate faults pending on average, rounded at random: 1.2 is 1 or 2
        share = batch_size * fault_rate
        wanted = int(share) + (rng.random() < share % 1) - stack.portkey.pending_faults
        for fault in rng.choices(faults, weights=weights, k=max(0, wanted)):
            stack.portkey.inject(fault)
            report.faults_injected += 1
        outcome = poller.poll_once()
        report.deliveries += outcome.received
        idle = idle + 1 if outcome.received == 0 else 0


def _collect(stack: EmbeddedStack, report: SoakReport) -> None:
    """Count what was published and dead-lettered so far (and take it off the inspection queues)."""
    for event in stack.published():
        if event["detail-type"] == "Run Tagged" and event["detail"]["request"]["request_id"]:
            report.tagged[event["detail"]["request"]["request_id"]] += 1
    for message in stack.dead_letters():
        match = _REQUEST_ID.search(message["Body"])
        code = message.get("MessageAttributes", {}).get("error_code", {}).get("StringValue", "redrive")
        if match:
            report.dead.setdefault(match.group(), []).append(code)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.soak", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--requests", type=_positive, default=10_000, help="distinct requests (default: %(default)s)"
    )
    defaults = SoakOptions()
    parser.add_argument(
        "--fault-rate",
        type=float,
        default=defaults.fault_rate,
        help="share of Portkey's answers made faulty, about (default: %(default)s)",
    )
    parser.add_argument(
        "--seed", type=int, default=defaults.seed, help="to replay a soak (default: %(default)s)"
    )
    parser.add_argument(
        "--max-receive-count",
        type=_positive,
        default=defaults.max_receive_count,
        help="the queue's receives before a message goes to the DLQ (default: %(default)s)",
    )
    parser.add_argument(
        "--portkey-attempts",
        type=_positive,
        default=defaults.portkey_attempts,
        help="PORTKEY_MAX_ATTEMPTS: attempts per delivery (default: %(default)s)",
    )
    parser.add_argument(
        "--fifo",
        action="store_true",
        help="a FIFO queue, one message group per run, batches of 10, no copy sent twice; order checked",
    )
    parser.add_argument(
        "--runs",
        type=_positive,
        help="runs the requests are spread over (default: one per request; with --fifo, one per ten)",
    )
    args = parser.parse_args(argv)
    started = time.monotonic()
    options = SoakOptions(
        **{name: value for name, value in vars(args).items() if name != "requests"}, progress=True
    )
    report, request_ids = run_soak(args.requests, options)
    print(report.render(request_ids, time.monotonic() - started))
    print(report.verdict(request_ids))
    return 0 if report.passed(request_ids) else 1


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


if __name__ == "__main__":
    sys.exit(main())
