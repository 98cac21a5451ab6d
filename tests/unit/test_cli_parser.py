"""The `run-tagger` command's options, as argparse takes or refuses them (nothing is sent)."""

from __future__ import annotations

import pytest
from run_tagger.errors import PermanentError

from run_tagger_cli.__main__ import build_parser


def _permanent_codes() -> set[str]:
    """The code of every permanent failure, however deep its class: these are what the DLQ holds."""
    codes: set[str] = set()
    pending = PermanentError.__subclasses__()
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


@pytest.mark.parametrize("code", sorted(_permanent_codes() | {"redrive"}))
def test_dlq_redrive_takes_every_code_a_dead_letter_can_carry(code: str) -> None:
    # Given a permanent failure's code, or "redrive" for what SQS moved after maxReceiveCount
    # When it is asked for
    args = build_parser().parse_args(["dlq", "redrive", "--code", code])
    # Then it is taken
    assert args.code == [code]
