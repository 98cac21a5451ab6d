"""The `run-tagger` command against the embedded stack, as an operator would use it."""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from local.stack import EmbeddedStack
from run_tagger_cli.__main__ import main
from tests.support import a_request, one_event

SCHEMAS = Path(__file__).resolve().parents[2] / "events" / "schemas"


def _json(capsys: pytest.CaptureFixture[str]) -> Any:
    return json.loads(capsys.readouterr().out)


def _dead_letter_two(stack: EmbeddedStack, function: ModuleType) -> None:
    stack.send("{not json")
    stack.send(a_request(run_id="run_x", tenant="nobody"))
    stack.poller(function.lambda_handler).poll_once()
    stack.published()


def dead_letter_a_refused_request_and_a_bad_body(stack: EmbeddedStack, function: ModuleType) -> None:
    """Two entries in the DLQ: a request Portkey refused (portkey_rejected) and a body that is not JSON."""
    from local.portkey import Fault

    stack.portkey.inject(Fault.error(400))
    stack.send(a_request(run_id="run_refused"))
    stack.send("{not json")
    stack.poller(function.lambda_handler).poll_once()
    stack.published()


def test_dlq_list_shows_each_entry_with_its_reason(
    stack: EmbeddedStack, cli: list[str], function: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given two dead-lettered requests
    _dead_letter_two(stack, function)
    # When the DLQ is listed
    code = main(["dlq", "list", *cli, "--dlq-url", stack.resources.dlq_url, "--json"])
    # Then both show with their code and message, and they stay in the DLQ
    entries = _json(capsys)
    assert code == 0
    assert sorted(e["error_code"] for e in entries) == ["invalid_request", "invalid_request"]
    assert any("unknown tenant" in e["error_message"] for e in entries)
    assert len(stack.dead_letters()) == 2


def test_dlq_list_prints_a_table(
    stack: EmbeddedStack, cli: list[str], function: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    _dead_letter_two(stack, function)

    main(["dlq", "list", *cli, "--dlq-url", stack.resources.dlq_url])

    out = capsys.readouterr().out
    assert out.splitlines()[0].split() == ["CODE", "MESSAGE", "REQUEST", "AGE"]
    assert "invalid_request" in out


def test_dlq_redrive_dry_run_moves_nothing_and_says_so(
    stack: EmbeddedStack, cli: list[str], function: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    _dead_letter_two(stack, function)

    code = main(["dlq", "redrive", *cli, "--dlq-url", stack.resources.dlq_url,
                 "--queue-url", stack.resources.queue_url, "--dry-run"])  # fmt: skip

    assert code == 0
    assert capsys.readouterr().out == "would move 2 of 2 entries back to the queue (dry run: nothing moved)\n"
    assert stack.queue_depth() == 0
    assert len(stack.dead_letters()) == 2


def test_dlq_redrive_dry_run_of_some_codes_counts_them_among_all_entries(
    stack: EmbeddedStack, cli: list[str], function: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a request Portkey refused and a bad body in the DLQ
    dead_letter_a_refused_request_and_a_bad_body(stack, function)
    # When a redrive of the portkey_rejected entries is previewed
    code = main(["dlq", "redrive", *cli, "--dlq-url", stack.resources.dlq_url,
                 "--queue-url", stack.resources.queue_url,
                 "--code", "portkey_rejected", "--dry-run"])  # fmt: skip
    # Then it says how many of all the entries would move, and both stay
    assert code == 0
    assert capsys.readouterr().out == "would move 1 of 2 entries back to the queue (dry run: nothing moved)\n"
    assert len(stack.dead_letters()) == 2


def test_dlq_redrive_moves_entries_back_and_they_are_processed_again(
    stack: EmbeddedStack, cli: list[str], function: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a request dead-lettered because Portkey refused it, and one bad body
    dead_letter_a_refused_request_and_a_bad_body(stack, function)
    # When only the portkey_rejected entries are redriven (after the cause was fixed)
    code = main(["dlq", "redrive", *cli, "--dlq-url", stack.resources.dlq_url,
                 "--queue-url", stack.resources.queue_url, "--code", "portkey_rejected"])  # fmt: skip
    # Then that one goes back, is tagged, and the bad body stays in the DLQ
    assert code == 0
    assert "moved 1 entry back to the queue; 1 left" in capsys.readouterr().out
    stack.poller(function.lambda_handler).poll_once()
    assert one_event(stack.published(), "Run Tagged")["detail"]["run"]["id"] == "run_refused"
    [left] = stack.dead_letters()
    assert left["Body"] == "{not json"


def test_dlq_purge_refuses_without_confirmation_off_a_terminal(
    stack: EmbeddedStack, cli: list[str], function: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    _dead_letter_two(stack, function)

    code = main(["dlq", "purge", *cli, "--dlq-url", stack.resources.dlq_url])

    assert code == 1
    assert "--yes" in capsys.readouterr().err
    assert len(stack.dead_letters()) == 2


def test_dlq_purge_with_yes_empties_the_dlq(
    stack: EmbeddedStack, cli: list[str], function: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    _dead_letter_two(stack, function)

    assert main(["dlq", "purge", *cli, "--dlq-url", stack.resources.dlq_url, "--yes"]) == 0

    assert stack.dead_letters() == []


@pytest.mark.parametrize(
    ("which", "file"),
    [
        ("request", "tag-run-request.json"),
        ("run-tagged", "run-tagged.json"),
        ("run-tag-failed", "run-tag-failed.json"),
    ],
)
def test_schema_prints_the_published_schema(
    which: str, file: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["schema", which]) == 0

    assert _json(capsys) == json.loads((SCHEMAS / file).read_text())


def test_dlq_list_shows_every_entry_once(
    stack: EmbeddedStack, cli: list[str], function: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given 25 dead-lettered requests
    for number in range(25):
        stack.send(f"{{not json {number}")
    stack.poller(function.lambda_handler, batch_size=25).poll_once()
    # When the DLQ is listed
    main(["dlq", "list", *cli, "--dlq-url", stack.resources.dlq_url, "--json"])
    # Then each shows once
    entries = _json(capsys)
    assert len({e["message_id"] for e in entries}) == len(entries) == 25
