"""A mistake made on the command line of the local tools is one line saying what to do, never a traceback."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from run_tagger.schemas import main as schemas_main

from local.__main__ import main as local_main
from local.portkey import main as standin_main


def test_poll_without_the_functions_environment_says_to_paste_the_stacks_exports(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a fresh shell: none of the function's variables set
    monkeypatch.delenv("PORTKEY_SECRET_ID", raising=False)
    # When the handler is fed from a queue
    with pytest.raises(SystemExit) as exited:
        local_main(["poll", "--queue-url", "http://127.0.0.1:9/123456789012/run-tagger-requests"])
    # Then it stops at once, naming the missing variable and where to get it
    error = capsys.readouterr().err
    assert exited.value.code == 2
    assert "PORTKEY_SECRET_ID" in error
    assert "export lines" in error
    assert "Traceback" not in error


def test_poll_of_a_queue_it_cannot_reach_says_so_in_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given the function's configuration, but no region for the AWS clients
    monkeypatch.setenv("PORTKEY_SECRET_ID", "run-tagger/portkey")
    for name in ("AWS_DEFAULT_REGION", "AWS_REGION", "AWS_PROFILE", "AWS_CONFIG_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    # When the handler is fed from a queue
    with pytest.raises(SystemExit) as exited:
        local_main(["poll", "--queue-url", "http://127.0.0.1:9/123456789012/run-tagger-requests"])
    # Then the error names the queue and the cause
    error = capsys.readouterr().err
    assert exited.value.code == 2
    assert "cannot read the queue http://127.0.0.1:9/123456789012/run-tagger-requests" in error
    assert "region" in error
    assert "Traceback" not in error


def test_the_stand_in_refuses_a_runs_file_with_a_run_it_cannot_serve(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a runs file whose run has no thread_id
    runs = tmp_path / "runs.json"
    runs.write_text(json.dumps([{"id": "run_1"}]), encoding="utf-8")
    # When the stand-in is started with it, then it stops with a usage error naming the problem
    with pytest.raises(SystemExit) as exited:
        standin_main(["--port", "0", "--runs", str(runs)])
    assert exited.value.code == 2
    assert "--runs: a run needs string 'id' and 'thread_id' fields" in capsys.readouterr().err


def test_the_stand_in_on_a_port_already_taken_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    # Given a port something else listens on
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        # When the stand-in is started on it, then it stops with a usage error, not a traceback
        with pytest.raises(SystemExit) as exited:
            standin_main(["--port", str(port)])
    assert exited.value.code == 2
    assert f"cannot listen on 127.0.0.1:{port}" in capsys.readouterr().err


def test_asking_the_schema_writer_for_help_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    # When `python -m run_tagger.schemas --help` is run
    with pytest.raises(SystemExit) as exited:
        schemas_main(["--help"])
    # Then it prints its usage and creates no directory named after the flag
    assert exited.value.code == 0
    assert "usage: python -m run_tagger.schemas" in capsys.readouterr().out
    assert list(tmp_path.iterdir()) == []
