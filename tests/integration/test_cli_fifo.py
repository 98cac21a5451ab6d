"""`run-tagger emit --group-id`: FIFO queues from the command line, end to end on the emulator."""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType

import pytest

from local.aws import drain
from local.stack import EmbeddedStack
from run_tagger_cli.__main__ import main
from tests.support import a_request, one_event


def test_emit_to_a_fifo_queue_with_a_group_is_tagged(
    fifo: EmbeddedStack, fifo_function: ModuleType, cli: list[str]
) -> None:
    # When a request is emitted to a FIFO queue with a group
    code = main(["emit", *cli, "--queue-url", fifo.resources.queue_url, "--group-id", "billing",
                 "--thread", "thread_f", "--run", "run_f", "--meta", "team=search"])  # fmt: skip
    # Then it is sent and the function tags the run
    assert code == 0
    fifo.poller(fifo_function.lambda_handler).poll_once()
    assert one_event(fifo.published(), "Run Tagged")["detail"]["run"]["id"] == "run_f"


def test_emit_to_a_fifo_queue_without_a_group_is_a_usage_error(
    fifo: EmbeddedStack, cli: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    # When a request is emitted to a FIFO queue without --group-id
    code = main(["emit", *cli, "--queue-url", fifo.resources.queue_url,
                 "--thread", "thread_f", "--run", "run_f", "--meta", "team=search"])  # fmt: skip
    # Then it is refused in one line that names the option, and nothing is sent
    err = capsys.readouterr().err
    assert code == 1
    assert "is a FIFO queue: give --group-id" in err
    assert "MissingParameter" not in err
    assert fifo.queue_depth() == 0


def test_emit_with_a_group_to_a_standard_queue_is_refused(
    stack: EmbeddedStack, cli: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["emit", *cli, "--queue-url", stack.resources.queue_url, "--group-id", "billing",
                 "--thread", "thread_s", "--run", "run_s", "--meta", "team=search"])  # fmt: skip

    assert code == 1
    assert "--group-id is for a FIFO queue only" in capsys.readouterr().err
    assert stack.queue_depth() == 0


def test_emit_with_a_group_via_eventbridge_is_refused(
    fifo: EmbeddedStack, cli: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["emit", *cli, "--via", "eventbridge", "--bus", fifo.resources.bus_name, "--group-id", "g",
                 "--thread", "thread_b", "--run", "run_b", "--meta", "team=search"])  # fmt: skip

    assert code == 1
    assert "the bus rule sets the group" in capsys.readouterr().err
    assert fifo.queue_depth() == 0


def test_emit_via_eventbridge_to_a_fifo_stack_needs_no_group(
    fifo: EmbeddedStack, fifo_function: ModuleType, cli: list[str]
) -> None:
    # When a request is emitted on the bus of a FIFO stack, without a group
    code = main(["emit", *cli, "--via", "eventbridge", "--bus", fifo.resources.bus_name,
                 "--thread", "thread_b", "--run", "run_b", "--meta", "team=search"])  # fmt: skip
    # Then the bus rule queues it in its group and the run is tagged
    assert code == 0
    fifo.poller(fifo_function.lambda_handler).poll_once()
    assert one_event(fifo.published(), "Run Tagged")["detail"]["run"]["id"] == "run_b"


def test_emit_a_file_to_a_fifo_queue_keeps_the_files_order_in_the_group(
    fifo: EmbeddedStack, cli: list[str], tmp_path: Path
) -> None:
    # Given a file of 15 requests, more than one SendMessageBatch call
    requests = tmp_path / "requests.jsonl"
    requests.write_text("".join(json.dumps(a_request(run_id=f"run_{i}")) + "\n" for i in range(15)))
    # When it is emitted to a FIFO queue in one group
    code = main(["emit", *cli, "--queue-url", fifo.resources.queue_url, "--group-id", "billing",
                 "--file", str(requests)])  # fmt: skip
    # Then the requests are queued in that group in the file's order
    assert code == 0
    messages = drain(fifo.aws, fifo.resources.queue_url)
    assert [json.loads(m["Body"])["run_id"] for m in messages] == [f"run_{i}" for i in range(15)]
    assert {m["Attributes"]["MessageGroupId"] for m in messages} == {"billing"}
