"""What `python -m local stack` and `run-tagger local` print is enough to use the stack from another shell."""

from __future__ import annotations

import shlex
from types import ModuleType

import pytest

from local.__main__ import main as local_main
from local.stack import EmbeddedStack
from run_tagger_cli.__main__ import main as cli_main


def test_following_the_printed_lines_tags_a_run(
    stack: EmbeddedStack,
    function: ModuleType,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given a shell with nothing but what the running stack's instructions say to paste
    lines = stack.instructions().splitlines()
    for name in list(stack.function_environment()):
        monkeypatch.delenv(name, raising=False)
    for line in lines:
        if line.startswith("export "):
            name, _, value = line.removeprefix("export ").partition("=")
            monkeypatch.setenv(name, shlex.split(value)[0])
    emit, poll = (shlex.split(line)[1:] for line in lines if line.startswith("  .venv/bin/"))
    # When the printed emit and poll commands are run, as printed
    assert cli_main(emit) == 0
    assert local_main(poll[2:]) == 0
    # Then the run is tagged: its event is published, and nothing waits in the queue or the DLQ
    capsys.readouterr()
    (event,) = stack.published()
    assert event["detail-type"] == "Run Tagged"
    assert event["detail"]["run"]["id"] == "run_1"
    assert stack.queue_depth() == 0
    assert stack.dead_letters() == []
