"""`run-tagger dlq list | redrive | purge`: the dead-letter queue and the reasons it keeps."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterator
from typing import Any, get_args

from run_tagger.schemas import PermanentErrorCode, TransientErrorCode

from run_tagger_cli.aws import Aws, CliError
from run_tagger_cli.output import Printer

# Attributes run-tagger adds when it dead-letters; a redriven message goes back without them.
REASON_ATTRIBUTES = ("error_code", "error_message", "error_status", "source_message_id")
# The code shown for an entry without error_code: SQS moved it after maxReceiveCount deliveries, the last
# of which the function could not dead-letter itself (a crash, a timeout, less than a second left,
# throttling, the DLQ refusing it, or MAX_RECEIVE_COUNT not set); or a body too large to carry its reason.
REDRIVEN_BY_SQS = "redrive"
# What `--code` takes: the codes of DESIGN §2's permanent failures, those of the transient failures a
# last delivery dead-letters, and SQS's redrive.
ERROR_CODES = (*get_args(PermanentErrorCode), *get_args(TransientErrorCode), REDRIVEN_BY_SQS)
PEEK_SECONDS = 30  # how long listed messages stay hidden before they are released again


def add_parser(commands: Any) -> list[argparse.ArgumentParser]:
    """The `dlq` command; returns its action parsers, which take the common options."""
    parser = commands.add_parser("dlq", help="list, redrive or purge the dead-letter queue")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="show the DLQ's entries with their reasons")
    redrive = actions.add_parser("redrive", help="move entries back to the tag-run queue")
    redrive.add_argument(
        "--code",
        action="append",
        choices=ERROR_CODES,
        metavar="CODE",
        help=f"only entries with this error_code (repeatable): %(choices)s ({REDRIVEN_BY_SQS}: moved by SQS "
        "after maxReceiveCount failed deliveries)",
    )
    redrive.add_argument("--dry-run", action="store_true", help="show what would move, move nothing")
    purge = actions.add_parser("purge", help="delete every entry (asks first)")
    purge.add_argument("--yes", action="store_true", help="do not ask")
    for sub in (listing, redrive, purge):
        sub.add_argument("--dlq-url", help="the dead-letter queue (or --stack)")
    redrive.add_argument("--queue-url", help="where redriven messages go (or --stack)")
    parser.set_defaults(handler=run)
    return [listing, redrive, purge]


def run(args: argparse.Namespace, aws: Aws, out: Printer) -> int:
    from botocore.exceptions import BotoCoreError, ClientError

    sqs = aws.client("sqs")
    dlq_url = aws.resolve(args.dlq_url, "dlq_url", "--dlq-url")
    try:
        if args.action == "list":
            return _list(sqs, dlq_url, out)
        if args.action == "redrive":
            queue_url = aws.resolve(args.queue_url, "queue_url", "--queue-url")
            return _redrive(
                sqs, dlq_url, queue_url, codes=set(args.code or []), dry_run=args.dry_run, out=out
            )
        return _purge(sqs, dlq_url, args.yes, out)
    except (BotoCoreError, ClientError) as exc:
        raise CliError(f"SQS: {exc}") from None


def peek(sqs: Any, dlq_url: str) -> list[dict[str, Any]]:
    """The messages SQS hands out now, each once, hidden for a while (release them with `release`).

    It stops when a receive brings nothing new: a message seen again (its hiding ran out on a long
    queue) ends the listing rather than appearing twice. A FIFO queue hands out at most the first
    messages of each group while they are hidden.
    """
    return [message for batch in _fresh_batches(sqs, dlq_url) for message in batch]


def _fresh_batches(sqs: Any, dlq_url: str) -> Iterator[list[dict[str, Any]]]:
    """Receives (hiding what they bring for PEEK_SECONDS) until one brings no message not seen before."""
    seen: set[str] = set()
    while True:
        batch = sqs.receive_message(
            QueueUrl=dlq_url,
            MaxNumberOfMessages=10,
            VisibilityTimeout=PEEK_SECONDS,
            WaitTimeSeconds=0,
            MessageAttributeNames=["All"],
            MessageSystemAttributeNames=["All"],
        ).get("Messages", [])
        new = [m for m in batch if m["MessageId"] not in seen]
        if not new:
            return
        seen.update(m["MessageId"] for m in new)
        yield new


def release(sqs: Any, dlq_url: str, messages: list[dict[str, Any]]) -> None:
    for start in range(0, len(messages), 10):
        entries = [
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0}
            for i, m in enumerate(messages[start : start + 10])
        ]
        sqs.change_message_visibility_batch(QueueUrl=dlq_url, Entries=entries)


def describe(message: dict[str, Any]) -> dict[str, Any]:
    attributes = message.get("MessageAttributes", {})
    sent = int(message.get("Attributes", {}).get("SentTimestamp", "0")) / 1000
    try:
        request: Any = json.loads(message["Body"])
    except ValueError:
        request = message["Body"]
    return {
        "message_id": message["MessageId"],
        "error_code": attributes.get("error_code", {}).get("StringValue", REDRIVEN_BY_SQS),
        "error_message": attributes.get("error_message", {}).get(
            "StringValue", "(moved by SQS after maxReceiveCount)"
        ),
        "request": request,
        "age_seconds": int(time.time() - sent) if sent else None,
    }


def _age(seconds: int | None) -> str:
    if seconds is None:
        return "?"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _list(sqs: Any, dlq_url: str, out: Printer) -> int:
    messages = peek(sqs, dlq_url)
    release(sqs, dlq_url, messages)
    entries = [describe(m) for m in messages]
    if out.json:
        out.emit(entries)
        return 0
    if not entries:
        out.line("the dead-letter queue is empty")
        return 0
    rows = [
        (
            e["error_code"],
            e["error_message"],
            json.dumps(e["request"]) if not isinstance(e["request"], str) else e["request"],
            _age(e["age_seconds"]),
        )
        for e in entries
    ]
    out.table(("CODE", "MESSAGE", "REQUEST", "AGE"), rows)
    return 0


def _redrive(sqs: Any, dlq_url: str, queue_url: str, *, codes: set[str], dry_run: bool, out: Printer) -> int:
    """Move the chosen entries batch by batch: each is sent back, then deleted from the DLQ at once."""
    moved: list[dict[str, Any]] = []
    passed_over: list[dict[str, Any]] = []
    seen = 0
    for batch in _fresh_batches(sqs, dlq_url):
        seen += len(batch)
        for message in batch:
            chosen = not codes or describe(message)["error_code"] in codes
            if chosen:
                moved.append(message)
            if dry_run or not chosen:
                passed_over.append(message)
                continue
            _send_back(sqs, queue_url, message)
            sqs.delete_message(QueueUrl=dlq_url, ReceiptHandle=message["ReceiptHandle"])
    release(sqs, dlq_url, passed_over)
    left = _depth(sqs, dlq_url)
    if out.json:
        out.emit({"dry_run": dry_run, "moved": [describe(m) for m in moved], "left": left})
    elif dry_run:
        noun = "entry" if seen == 1 else "entries"
        out.line(f"would move {len(moved)} of {seen} {noun} back to the queue (dry run: nothing moved)")
    else:
        noun = "entry" if len(moved) == 1 else "entries"
        out.line(f"moved {len(moved)} {noun} back to the queue; {left} left in the dead-letter queue")
    return 0


def _send_back(sqs: Any, queue_url: str, message: dict[str, Any]) -> None:
    kept = {k: v for k, v in message.get("MessageAttributes", {}).items() if k not in REASON_ATTRIBUTES}
    extra: dict[str, Any] = {"MessageAttributes": kept} if kept else {}
    if queue_url.endswith(".fifo"):
        extra["MessageGroupId"] = message.get("Attributes", {}).get("MessageGroupId", "redrive")
        extra["MessageDeduplicationId"] = f"redrive-{message['MessageId']}"
    sqs.send_message(QueueUrl=queue_url, MessageBody=message["Body"], **extra)


def _depth(sqs: Any, queue_url: str) -> int:
    attributes = sqs.get_queue_attributes(
        QueueUrl=queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(
        attributes["ApproximateNumberOfMessagesNotVisible"]
    )


def _purge(sqs: Any, dlq_url: str, yes: bool, out: Printer) -> int:
    if not yes:
        if not sys.stdin.isatty():
            raise CliError("purge deletes every entry: confirm with --yes when not at a terminal")
        answer = input(f"Delete every message in {dlq_url}? Type 'purge' to confirm: ")
        if answer.strip() != "purge":
            out.line("nothing deleted")
            return 1
    sqs.purge_queue(QueueUrl=dlq_url)
    if out.json:
        out.emit({"purged": dlq_url})
    else:
        out.line(f"purged {dlq_url}")
    return 0
