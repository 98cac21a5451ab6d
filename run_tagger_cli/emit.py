"""`run-tagger emit`: send one request, or many from a JSON Lines file, through SQS or EventBridge."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from run_tagger.errors import InvalidRequest
from run_tagger.producer import TagRunProducer
from run_tagger.request import TagRunRequest, validate_request

from run_tagger_cli.aws import Aws, CliError
from run_tagger_cli.output import Printer

CHUNK = 100  # requests validated and sent between two updates of the progress bar


@dataclass(frozen=True, slots=True)
class Failure:
    """A request that was not sent: its line in the file (1 for a single request), and why."""

    line: int
    code: str
    message: str


def add_parser(commands: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = commands.add_parser(
        "emit",
        help="send tag-run requests",
        description="Send one request (--thread, --run, --meta) or many (--file requests.jsonl). "
        "Requests are validated first, with the errors the function would give.",
    )
    parser.add_argument("--thread", metavar="THREAD_ID", help="thread id")
    parser.add_argument("--run", metavar="RUN_ID", help="run id")
    parser.add_argument(
        "--meta",
        metavar="KEY=VALUE",
        action="append",
        default=[],
        help="a metadata pair (repeat for more; at least one: the run's metadata becomes exactly these)",
    )
    parser.add_argument("--tenant", help="use this tenant's Portkey keys")
    parser.add_argument("--request-id", help="your id for this request (de-duplication)")
    parser.add_argument(
        "--file",
        type=Path,
        help="JSON Lines: one request object per line (blank lines skipped). The whole file is checked "
        "first: if any line is not a valid request, nothing is sent and each bad line is reported by "
        "its line number",
    )
    parser.add_argument("--via", choices=("sqs", "eventbridge"), default="sqs", help="default: %(default)s")
    parser.add_argument("--queue-url", help="the tag-run queue (or --stack)")
    parser.add_argument(
        "--group-id",
        metavar="GROUP",
        help="the MessageGroupId: required for a FIFO queue (URL ending in .fifo), refused otherwise; "
        "all requests sent go in this group, in order. On a FIFO queue a request's request_id (with its "
        "tenant) is also its MessageDeduplicationId; without one the queue's content-based "
        "de-duplication applies. Not with --via eventbridge: the bus rule sets the group",
    )
    parser.add_argument("--bus", metavar="NAME", help="the event bus, with --via eventbridge (or --stack)")
    parser.add_argument("--source", default="run-tagger.cli", help="event source with --via eventbridge")
    parser.set_defaults(handler=run)
    return parser


def _single(args: argparse.Namespace) -> dict[str, Any]:
    if not args.thread or not args.run:
        raise CliError("give --thread, --run and --meta KEY=VALUE (repeatable), or --file")
    if not args.meta:  # an empty metadata clears the run's: never by omission
        line = json.dumps({"thread_id": args.thread, "run_id": args.run, "metadata": {}})
        raise CliError(
            "give at least one --meta KEY=VALUE (to clear the run's metadata on purpose, "
            f"emit a --file holding the line {line})"
        )
    metadata: dict[str, str] = {}
    for pair in args.meta:
        key, sep, value = pair.partition("=")
        if not sep:
            raise CliError(f"--meta {pair!r}: expected KEY=VALUE")
        if key in metadata:
            raise CliError(f"--meta {key!r} given twice: give each key once")
        metadata[key] = value
    request: dict[str, Any] = {"thread_id": args.thread, "run_id": args.run, "metadata": metadata}
    if args.tenant:
        request["tenant"] = args.tenant
    if args.request_id:
        request["request_id"] = args.request_id
    return request


def _from_file(path: Path) -> tuple[list[int], list[TagRunRequest], list[Failure]]:
    """The number and request of each good line, and what is wrong with each bad one (blanks skipped)."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise CliError(f"{path}: {exc.strerror}") from None
    numbers: list[int] = []
    requests: list[TagRunRequest] = []
    bad: list[Failure] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            payload = json.loads(line)
        except ValueError as exc:
            bad.append(Failure(number, InvalidRequest.code, f"not JSON ({exc})"))
            continue
        try:
            requests.append(validate_request(payload))
        except InvalidRequest as error:
            bad.append(Failure(number, error.code, error.message))
            continue
        numbers.append(number)
    return numbers, requests, bad


def _producer(args: argparse.Namespace, aws: Aws) -> TagRunProducer:
    if args.via == "eventbridge":
        if args.group_id is not None:
            raise CliError(
                "--group-id is for a FIFO queue; with --via eventbridge the bus rule sets the group"
            )
        bus = aws.resolve(args.bus, "bus_name", "--bus")
        return TagRunProducer.to_bus(bus, source=args.source, events=aws.client("events"))
    queue_url = aws.resolve(args.queue_url, "queue_url", "--queue-url")
    fifo = queue_url.endswith(".fifo")
    if fifo and not args.group_id:
        raise CliError(f"{queue_url} is a FIFO queue: give --group-id GROUP (requests of a group keep order)")
    if not fifo and args.group_id is not None:
        raise CliError(f"--group-id is for a FIFO queue only, and {queue_url} is a standard queue")
    return TagRunProducer.to_queue(queue_url, sqs=aws.client("sqs"))


def run(args: argparse.Namespace, aws: Aws, out: Printer) -> int:
    if args.file and (args.thread or args.run or args.meta or args.tenant or args.request_id):
        # Each line of the file is a whole request: its tenant and request_id are fields of the line.
        raise CliError(
            "give either --file or --thread/--run/--meta (with --tenant, --request-id), not both; "
            "in a file, tenant and request_id are fields of each line"
        )
    if args.file:
        lines, requests, bad = _from_file(args.file)
        if bad:  # all or nothing: a half-sent file is harder to fix and resend than an unsent one
            return _refuse_file(bad, len(lines) + len(bad), out)
    else:
        try:
            lines, requests = [1], [validate_request(_single(args))]
        except InvalidRequest as error:
            raise CliError(f"invalid request: {error.message}") from None
    producer = _producer(args, aws)
    sent: dict[int, str] = {}
    failed: list[Failure] = []
    with out.progress(len(requests), "sending") as advance:
        for start in range(0, len(requests), CHUNK):
            part = producer.send_batch(requests[start : start + CHUNK], message_group_id=args.group_id)
            sent.update({lines[start + i]: ident for i, ident in part.sent.items()})
            failed.extend(Failure(lines[start + f.index], f.code, f.message) for f in part.failed)
            advance(min(CHUNK, len(requests) - start))
    if out.json:
        return _json_report(sent, failed, out)
    noun = "message" if args.via == "sqs" else "event"
    out.line(f"sent {len(sent)} of {len(requests)} requests as {noun}s")
    if len(requests) == 1 and sent:
        out.line(f"{noun} id: {sent[lines[0]]}")
    _print_failures(failed, numbered=bool(args.file))
    return 0 if not failed else 1


def _refuse_file(bad: list[Failure], total: int, out: Printer) -> int:
    if out.json:
        return _json_report({}, bad, out)
    out.line(f"sent nothing: {len(bad)} of {total} lines are not valid requests; fix them and emit again")
    _print_failures(bad, numbered=True)
    return 1


def _json_report(sent: dict[int, str], failed: list[Failure], out: Printer) -> int:
    out.emit(
        {
            "sent": len(sent),
            "failed": [{"line": f.line, "code": f.code, "message": f.message} for f in failed],
            "ids": [sent[line] for line in sorted(sent)],
        }
    )
    return 0 if not failed else 1


def _print_failures(failures: list[Failure], *, numbered: bool) -> None:
    for failure in sorted(failures, key=lambda f: f.line):
        where = f"line {failure.line}: " if numbered else ""
        print(f"{where}{failure.code}: {failure.message}", file=sys.stderr)
