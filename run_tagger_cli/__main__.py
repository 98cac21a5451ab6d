"""`run-tagger`: send tag-run requests, inspect the dead-letter queue, print the event schemas."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import threading

from run_tagger_cli import dlq, emit
from run_tagger_cli.aws import Aws, CliError, add_aws_options, add_output_options
from run_tagger_cli.output import Printer

SCHEMAS = {
    "request": "tag-run-request.json",
    "run-tagged": "run-tagged.json",
    "run-tag-failed": "run-tag-failed.json",
}


def _schema(args: argparse.Namespace, _aws: Aws | None, out: Printer) -> int:
    from run_tagger.schemas import all_schemas

    out.emit(all_schemas()[SCHEMAS[args.which]])
    return 0


def _local(args: argparse.Namespace, _aws: Aws | None, out: Printer) -> int:
    try:
        from local.stack import EmbeddedStack
    except ImportError:
        raise CliError(
            "the embedded stack needs a checkout of run-tagger (run it from the repository)"
        ) from None
    with EmbeddedStack.running(fifo=args.fifo) as stack:
        endpoints = {
            "endpoint_url": stack.aws.endpoint_url,
            "portkey_base_url": stack.portkey.base_url,
            "queue_url": stack.resources.queue_url,
            "dlq_url": stack.resources.dlq_url,
            "bus_name": stack.resources.bus_name,
            "environment": stack.function_environment(),
        }
        if out.json:
            out.emit(endpoints)
        else:
            out.line(stack.instructions(fifo=args.fifo))
        sys.stdout.flush()
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="run-tagger",
        description="Send tag-run requests to run-tagger, and look after its dead-letter queue.",
        epilog="Examples:\n"
        "  run-tagger emit --stack run-tagger --thread thread_abc --run run_abc --meta customer=acme\n"
        "  run-tagger emit --stack run-tagger --file requests.jsonl --via eventbridge\n"
        "  run-tagger dlq list --stack run-tagger\n"
        "  run-tagger dlq redrive --stack run-tagger --code portkey_rejected --dry-run\n"
        "  run-tagger schema run-tagged",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    leaves = [emit.add_parser(commands), *dlq.add_parser(commands)]
    schema = commands.add_parser("schema", help="print a JSON Schema (request, run-tagged, run-tag-failed)")
    schema.add_argument("which", choices=sorted(SCHEMAS), nargs="?", default="request")
    schema.set_defaults(handler=_schema, aws=False)
    local = commands.add_parser("local", help="start the embedded stack and keep it running")
    local.add_argument("--fifo", action="store_true", help="FIFO queues")
    local.set_defaults(handler=_local, aws=False)
    # On the leaves only: argparse lets a subcommand's defaults overwrite what its parent parsed.
    # The AWS options only where AWS is called: anywhere else they would be taken and ignored.
    for leaf in leaves:
        add_aws_options(leaf)
    for leaf in (*leaves, schema, local):
        add_output_options(leaf)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    out = Printer(json_output=bool(getattr(args, "json", False)))
    try:
        aws = Aws.from_args(args) if getattr(args, "aws", True) else None
        code: int = args.handler(args, aws, out)
    except CliError as error:
        _fail(str(error), out)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0  # the reader (e.g. `| head`) has what it wanted
    except Exception as error:  # one clear line, never a traceback
        _fail(f"{type(error).__name__}: {error}", out)
        return 1
    return code


def _fail(message: str, out: Printer) -> None:
    if out.json:
        print(json.dumps({"error": message}), file=sys.stderr)
    else:
        print(f"run-tagger: error: {message}", file=sys.stderr)


def run() -> None:
    sys.exit(main())


if __name__ == "__main__":
    run()
