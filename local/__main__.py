"""`python -m local`: the embedded stack, whole or in parts (DESIGN §1.6)."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import threading

_PASTE_EXPORTS = "for the embedded stack, paste the export lines `python -m local stack` prints"


def _serve_stack(fifo: bool) -> int:
    from local.stack import EmbeddedStack

    with EmbeddedStack.running(fifo=fifo) as stack:
        print(stack.instructions(fifo=fifo), flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()
    return 0


class UsageError(Exception):
    """A mistake of the person running the command: one line, no traceback."""


def _poll(queue_url: str, batch_size: int, timeout: float) -> int:
    """Feed the real handler from a queue (emulated or not) until it is drained; config from the env."""
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError
    from run_tagger.settings import ConfigurationError, load_settings

    from local.stack import load_function

    try:
        load_settings()  # the handler would fail every record the same way: say it once, now
    except ConfigurationError as error:
        raise UsageError(f"the function's environment is not usable ({error}); {_PASTE_EXPORTS}") from None
    try:
        sqs = boto3.client("sqs")
        attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]
    except (BotoCoreError, ClientError) as error:
        raise UsageError(f"cannot read the queue {queue_url}: {error}; {_PASTE_EXPORTS}") from None
    arn = attributes["QueueArn"]
    from local.poller import QueuePoller

    poller = QueuePoller(
        sqs, queue_url, arn, sqs.meta.region_name, load_function().lambda_handler,
        batch_size=batch_size, batching_window_seconds=1.0 if batch_size > 10 else 0.0,
        function_timeout_seconds=timeout,
    )  # fmt: skip
    outcomes = poller.run_until_drained()
    failed = sum(len(o.failed) for o in outcomes)
    print(f"{sum(o.received for o in outcomes)} deliveries in {len(outcomes)} batches, {failed} failed items")
    return 1 if any(o.error for o in outcomes) else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m local",
        description="run-tagger's embedded stack: moto's server and a Portkey stand-in.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    demo = commands.add_parser(
        "demo", help="run the samples from events/ through the whole pipeline (make run)"
    )
    demo.add_argument("--verbose", action="store_true", help="also log every tagged run")
    stack = commands.add_parser(
        "stack", help="start the AWS emulator, the stand-in and the resources; keep running"
    )
    stack.add_argument("--fifo", action="store_true", help="create FIFO queues")
    poll = commands.add_parser(
        "poll",
        help="feed the real handler from a queue until drained, configured by the environment the function "
        "reads (the export lines `stack` prints)",
    )
    poll.add_argument(
        "--queue-url", required=True, help="the tag-run queue (AWS_ENDPOINT_URL selects the emulator)"
    )
    poll.add_argument(
        "--batch-size", type=int, default=10, help="records per invocation (default: %(default)s)"
    )
    poll.add_argument(
        "--timeout", type=float, default=30.0, help="function timeout in seconds (default: %(default)s)"
    )
    commands.add_parser("portkey", help="start the Portkey stand-in alone (python -m local.portkey --help)",
                        add_help=False)  # fmt: skip
    args, rest = parser.parse_known_args(argv)
    if args.command == "portkey":
        from local.portkey import main as portkey_main

        return portkey_main(rest)
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    if args.command == "stack":
        return _serve_stack(args.fifo)
    if args.command == "poll":
        try:
            return _poll(args.queue_url, args.batch_size, args.timeout)
        except UsageError as error:
            parser.exit(2, f"{parser.prog} poll: error: {error}\n")
    from local.demo import run_demo

    return run_demo(verbose=args.verbose)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
