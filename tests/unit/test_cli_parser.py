"""The `run-tagger` command's options, as argparse takes or refuses them (nothing is sent)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import run_tagger.idempotency  # noqa: F401 - defines transient errors of its own
from run_tagger.errors import PermanentError, TagRunError, TransientError

from run_tagger_cli.__main__ import build_parser

README = Path(__file__).resolve().parents[2] / "README.md"
AWS_OPTIONS = [["--stack", "run-tagger"], ["--region", "eu-west-1"], ["--profile", "dev"],
               ["--endpoint-url", "http://127.0.0.1:5000"]]  # fmt: skip
AWS_COMMANDS = [["emit"], ["dlq", "list"], ["dlq", "redrive"], ["dlq", "purge"]]


def _command_lines(text: str) -> list[str]:
    """The lines of fenced code blocks that run the command (`run-tagger …`, `.venv/bin/run-tagger …`)."""
    blocks = re.findall(r"^```[^\n]*\n(.*?)^```", text, flags=re.MULTILINE | re.DOTALL)
    return [
        line for block in blocks for line in block.splitlines() if re.match(r"\s*(\S*/)?run-tagger\s", line)
    ]


def _argv(line: str) -> list[str]:
    return shlex.split(line, comments=True)[1:]


def _codes(root: type[TagRunError]) -> set[str]:
    """The code of every failure under `root`, however deep its class."""
    codes: set[str] = {root.code} if root is TransientError else set()
    pending = root.__subclasses__()
    while pending:
        error = pending.pop()
        codes.add(error.code)
        pending.extend(error.__subclasses__())
    return codes


def test_dlq_redrive_refuses_an_unknown_code(capsys: pytest.CaptureFixture[str]) -> None:
    # When an error code no entry can carry is asked for
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(["dlq", "redrive", "--code", "nonsense_code"])
    # Then argparse refuses it, naming the codes it takes
    err = capsys.readouterr().err
    assert exited.value.code == 2
    assert "argument --code: invalid choice: 'nonsense_code'" in err
    assert "portkey_rejected" in err


@pytest.mark.parametrize("code", sorted(_codes(PermanentError) | _codes(TransientError) | {"redrive"}))
def test_dlq_redrive_takes_every_code_a_dead_letter_can_carry(code: str) -> None:
    # Given a permanent failure's code, a transient one's (its last delivery failed), or "redrive" for
    # what SQS moved after maxReceiveCount
    # When it is asked for
    args = build_parser().parse_args(["dlq", "redrive", "--code", code])
    # Then it is taken
    assert args.code == [code]


def test_the_readme_shows_command_lines_to_check() -> None:
    assert _command_lines(README.read_text(encoding="utf-8"))  # else the next test checks nothing


@pytest.mark.parametrize(
    "line", _command_lines(README.read_text(encoding="utf-8")), ids=lambda line: shlex.join(_argv(line))
)
def test_every_command_line_of_the_readme_parses(line: str) -> None:
    build_parser().parse_args(_argv(line))


@pytest.mark.parametrize(
    "line", [line for line in (build_parser().epilog or "").splitlines() if "run-tagger " in line]
)
def test_every_example_of_the_help_parses(line: str) -> None:
    build_parser().parse_args(_argv(line))


@pytest.mark.parametrize("command", [["schema", "run-tagged"], ["local"]], ids=" ".join)
@pytest.mark.parametrize("option", AWS_OPTIONS, ids=lambda option: option[0])
def test_commands_that_call_no_aws_refuse_the_aws_options(
    command: list[str], option: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    # When a command that never calls AWS is given an AWS option
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args([*command, *option])
    # Then argparse refuses it rather than ignoring it
    assert exited.value.code == 2
    assert f"unrecognized arguments: {option[0]}" in capsys.readouterr().err


@pytest.mark.parametrize("command", AWS_COMMANDS, ids=" ".join)
def test_commands_that_call_aws_take_the_aws_options(command: list[str]) -> None:
    args = build_parser().parse_args([*command, *(value for option in AWS_OPTIONS for value in option)])

    assert (args.stack, args.region, args.profile) == ("run-tagger", "eu-west-1", "dev")
    assert args.endpoint_url == "http://127.0.0.1:5000"


@pytest.mark.parametrize("command", [*AWS_COMMANDS, ["schema"], ["local"]], ids=" ".join)
def test_every_command_takes_json(command: list[str]) -> None:
    assert build_parser().parse_args([*command, "--json"]).json is True
