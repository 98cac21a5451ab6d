"""`run-tagger emit` against the embedded stack, as a producer would use it."""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from local.stack import EmbeddedStack
from run_tagger_cli.__main__ import main
from tests.support import a_request, one_event


def _json(capsys: pytest.CaptureFixture[str]) -> Any:
    return json.loads(capsys.readouterr().out)


def test_emit_sends_a_request_that_gets_tagged(
    stack: EmbeddedStack, cli: list[str], function: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    # When an operator emits one request
    code = main(["emit", *cli, "--queue-url", stack.resources.queue_url, "--thread", "thread_cli",
                 "--run", "run_cli", "--meta", "team=search", "--meta", "ticket=T-9", "--json"])  # fmt: skip
    # Then it is sent, and the function tags the run with that metadata
    assert code == 0
    assert _json(capsys)["sent"] == 1
    stack.poller(function.lambda_handler).poll_once()
    event = one_event(stack.published(), "Run Tagged")
    assert event["detail"]["run"]["metadata"] == {"team": "search", "ticket": "T-9"}


def test_emit_refuses_an_invalid_request_before_sending(
    stack: EmbeddedStack, cli: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    # When the request breaks the contract
    code = main(["emit", *cli, "--queue-url", stack.resources.queue_url,
                 "--thread", "../x", "--run", "r", "--meta", "a=b"])  # fmt: skip
    # Then it is refused with the function's own message, in one line, and nothing is sent
    assert code == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "thread_id: must be 1-128 characters" in err
    assert stack.queue_depth() == 0


def _good_lines(count: int) -> list[str]:
    return [json.dumps(a_request(run_id=f"run_{i}")) for i in range(count)]


# Files with one bad line among good ones, and that line's number in the file.
ONE_BAD_LINE = {
    # an invalid request (a misspelt field) as line 6 of 25
    "invalid request": ([*_good_lines(5), json.dumps(a_request(meta_data={})), *_good_lines(24)[5:]], 6),
    # a line that is JSON but not an object, after 150 good requests
    "not an object": ([*_good_lines(150), '["thread", "run"]'], 151),
}


@pytest.mark.parametrize("case", ONE_BAD_LINE.values(), ids=ONE_BAD_LINE.keys())
def test_emit_from_a_file_with_one_bad_line_sends_nothing_and_names_its_line(
    stack: EmbeddedStack,
    cli: list[str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    case: tuple[list[str], int],
) -> None:
    # Given a JSON Lines file of good requests and one bad line
    lines, bad_line = case
    requests = tmp_path / "requests.jsonl"
    requests.write_text("\n".join(lines) + "\n")
    # When it is emitted
    code = main(["emit", *cli, "--queue-url", stack.resources.queue_url, "--file", str(requests), "--json"])
    # Then nothing is sent, and the bad line is reported by its number, with its reason and no crash
    report = _json(capsys)
    assert code == 1
    assert report["sent"] == 0
    assert [(f["line"], f["code"]) for f in report["failed"]] == [(bad_line, "invalid_request")]
    assert stack.queue_depth() == 0


def test_emit_via_eventbridge_reaches_the_function(
    stack: EmbeddedStack, cli: list[str], function: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    # When a request is emitted as an EventBridge event on the bus
    code = main(["emit", *cli, "--via", "eventbridge", "--bus", stack.resources.bus_name,
                 "--thread", "thread_cli", "--run", "run_bus", "--meta", "a=b"])  # fmt: skip
    # Then the bus rule delivers it to the queue and the run is tagged
    assert code == 0
    assert "sent 1 of 1 requests as events" in capsys.readouterr().out
    stack.poller(function.lambda_handler).poll_once()
    assert one_event(stack.published(), "Run Tagged")["detail"]["run"]["id"] == "run_bus"


def test_emit_without_meta_is_a_usage_error_saying_how_to_clear_metadata(
    stack: EmbeddedStack, cli: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    # When a request is emitted with no --meta (which would clear the run's metadata)
    code = main(["emit", *cli, "--queue-url", stack.resources.queue_url, "--thread", "t", "--run", "r"])
    # Then it is refused, saying --meta is needed and how to clear metadata on purpose, and nothing is sent
    err = capsys.readouterr().err
    assert code == 1
    assert "give at least one --meta KEY=VALUE" in err
    assert '--file holding the line {"thread_id": "t", "run_id": "r", "metadata": {}}' in err
    assert stack.queue_depth() == 0


def test_emit_with_a_meta_key_given_twice_is_a_usage_error_naming_it(
    stack: EmbeddedStack, cli: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["emit", *cli, "--queue-url", stack.resources.queue_url, "--thread", "t", "--run", "r",
                 "--meta", "team=search", "--meta", "team=billing"])  # fmt: skip

    assert code == 1
    assert capsys.readouterr().err == "run-tagger: error: --meta 'team' given twice: give each key once\n"
    assert stack.queue_depth() == 0


def test_a_missing_queue_is_one_clear_line(cli: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["emit", *cli, "--thread", "t", "--run", "r", "--meta", "a=b"])

    err = capsys.readouterr().err
    assert code == 1
    assert err == "run-tagger: error: give --queue-url or --stack\n"


def test_emit_from_a_file_names_every_bad_line_by_its_number_in_the_file(
    stack: EmbeddedStack, cli: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a file with blank lines, an invalid request on line 3 and a line that is not JSON on line 5
    good, invalid = json.dumps(a_request()), json.dumps(a_request(run_id="bad id"))
    requests = tmp_path / "requests.jsonl"
    requests.write_text(f"{good}\n\n{invalid}\n\n{{not json\n{good}\n")
    # When it is emitted
    code = main(["emit", *cli, "--queue-url", stack.resources.queue_url, "--file", str(requests)])
    # Then both bad lines are reported by their line numbers in the file, and nothing is sent
    out, err = capsys.readouterr()
    assert code == 1
    assert out == "sent nothing: 2 of 4 lines are not valid requests; fix them and emit again\n"
    assert [line.split(":")[0] for line in err.splitlines()] == ["line 3", "line 5"]
    assert "line 5: invalid_request: not JSON" in err
    assert stack.queue_depth() == 0


def test_emit_from_a_valid_file_sends_every_request_in_order(
    stack: EmbeddedStack, cli: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given 150 good requests, more than one round of the progress bar
    requests = tmp_path / "requests.jsonl"
    requests.write_text("".join(json.dumps(a_request(run_id=f"run_{i}")) + "\n" for i in range(150)))
    # When the file is emitted
    code = main(["emit", *cli, "--queue-url", stack.resources.queue_url, "--file", str(requests), "--json"])
    # Then all are sent, with an id for each
    report = _json(capsys)
    assert code == 0
    assert (report["sent"], report["failed"], len(set(report["ids"]))) == (150, [], 150)
    assert stack.queue_depth() == 150


@pytest.mark.parametrize("option", [["--tenant", "acme"], ["--request-id", "req-9"]], ids=lambda o: o[0])
def test_emit_refuses_a_single_requests_option_beside_a_file(
    stack: EmbeddedStack,
    cli: list[str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    option: list[str],
) -> None:
    # Given a file of requests, and an option that only a single request takes
    requests = tmp_path / "requests.jsonl"
    requests.write_text(json.dumps(a_request()) + "\n")
    # When both are given
    code = main(["emit", *cli, "--queue-url", stack.resources.queue_url, "--file", str(requests), *option])
    # Then nothing is sent (the file's requests would silently go without that tenant or id), and the
    # error says where those fields go
    assert code == 1
    assert "in a file, tenant and request_id are fields of each line" in capsys.readouterr().err
    assert stack.queue_depth() == 0
