"""Unit tests of `run_tagger.observability`: what a failed request's log line and metrics say of its fate."""

from __future__ import annotations

import io
import json
import logging
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from aws_lambda_powertools import Logger, Metrics
from run_tagger.errors import InvalidRequest, PortkeyUnavailable, TagRunError
from run_tagger.observability import QUIET_LIBRARIES, PowertoolsOutcomeLog, quiet_libraries


@pytest.fixture
def outcome_log(monkeypatch: pytest.MonkeyPatch) -> tuple[PowertoolsOutcomeLog, io.StringIO, Metrics]:
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED", raising=False)
    stream = io.StringIO()
    metrics = Metrics(namespace="RunTaggerTest", service="run-tagger")
    metrics.clear_metrics()
    # A service name of its own: Powertools reuses the handler of a logger already set up under a name.
    logger = Logger(service=f"outcome-log-{uuid.uuid4().hex}", stream=stream)
    log = PowertoolsOutcomeLog(logger, metrics)
    return log, stream, metrics


def fate(
    outcome_log: tuple[PowertoolsOutcomeLog, io.StringIO, Metrics], error: TagRunError, **kwargs: Any
) -> tuple[str, set[str]]:
    """The logged message and the metric names counted for one failed request."""
    log, stream, metrics = outcome_log
    log.failed(error, "m-1", **kwargs)
    log.emit_counts()
    [line] = stream.getvalue().splitlines()
    counted = set(metrics.metric_set)
    metrics.clear_metrics()
    return str(json.loads(line)["message"]), counted


def test_a_transient_failure_is_logged_and_counted_as_retried(outcome_log: Any) -> None:
    # Given a transient failure on a delivery that is not the last; when it is reported
    message, counted = fate(outcome_log, PortkeyUnavailable("503"), dead_lettered=False)
    # Then the log line and the metric say it will be retried
    assert message == "request will be retried: portkey_unavailable"
    assert counted == {"RequestsRetried"}


def test_a_transient_failure_dead_lettered_last_is_counted_as_failed(outcome_log: Any) -> None:
    # Given a transient failure dead-lettered on its last delivery; when it is reported
    message, counted = fate(outcome_log, PortkeyUnavailable("503"), dead_lettered=True)
    # Then it is a failure, not a retry
    assert message == "request dead-lettered after its last delivery: portkey_unavailable"
    assert counted == {"RequestsFailed"}


def test_a_last_delivery_left_to_the_queues_redrive_says_so_and_is_not_counted_as_retried(
    outcome_log: Any,
) -> None:
    # Given a last delivery the function could not dead-letter; when it is reported
    message, counted = fate(outcome_log, PortkeyUnavailable("503"), dead_lettered=False, last_delivery=True)
    # Then the line says SQS moves it without its reason, and no retry is counted
    assert message.startswith("request left to the queue's redrive, without its reason")
    assert counted == {"RequestsFailed"}


def test_a_failure_line_carries_the_error_its_code_status_and_retryability(outcome_log: Any) -> None:
    log, stream, _metrics = outcome_log

    log.failed(PortkeyUnavailable("Portkey answered 503: overloaded", status=503), "m-7", dead_lettered=False)

    line = json.loads(stream.getvalue())
    assert {name: line[name] for name in ("message_id", "error_code", "error_message", "error_status")} == {
        "message_id": "m-7",
        "error_code": "portkey_unavailable",
        "error_message": "Portkey answered 503: overloaded",
        "error_status": 503,
    }
    assert line["retryable"] is True


def test_counts_are_emitted_once_per_invocation(outcome_log: Any) -> None:
    # Given a failure counted and emitted at the end of one invocation
    log, _stream, metrics = outcome_log
    log.failed(PortkeyUnavailable("503"), "m-1", dead_lettered=False)
    log.emit_counts()
    metrics.clear_metrics()
    # When the next invocation ends with nothing to report
    log.emit_counts()
    # Then nothing is counted again
    assert metrics.metric_set == {}


@pytest.fixture
def library_levels() -> Iterator[None]:
    """The quieted libraries' levels, put back after the test."""
    levels = {name: logging.getLogger(name).level for name in QUIET_LIBRARIES}
    yield
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


@pytest.mark.usefixtures("library_levels")
def test_libraries_that_log_bodies_stay_quiet_at_debug() -> None:
    # Given every library at DEBUG (the function's own level set to DEBUG)
    for name in QUIET_LIBRARIES:
        logging.getLogger(name).setLevel(logging.DEBUG)
    # When the function quiets them
    quiet_libraries()
    # Then none logs at DEBUG (botocore's DEBUG lines carry GetSecretValue's answer), botocore not even INFO
    assert all(logging.getLogger(name).getEffectiveLevel() > logging.DEBUG for name in QUIET_LIBRARIES)
    assert logging.getLogger("botocore").getEffectiveLevel() >= logging.WARNING


def test_a_permanent_failure_dead_lettered_is_counted_as_failed(outcome_log: Any) -> None:
    # Given a permanent failure dead-lettered at once; when it is reported
    message, counted = fate(outcome_log, InvalidRequest("body is not JSON"), dead_lettered=True)
    # Then it is a failure
    assert message == "request dead-lettered: invalid_request"
    assert counted == {"RequestsFailed"}


def test_a_crash_on_the_last_delivery_says_the_queue_moves_it_and_is_not_counted_as_retried(
    outcome_log: Any,
) -> None:
    # Given an unexpected error on a message's last delivery; when it is reported
    log, stream, metrics = outcome_log
    try:
        raise RuntimeError("bug")
    except RuntimeError:
        log.crashed("m-1", last_delivery=True)
    log.emit_counts()
    # Then the line says where the message goes, and it counts as a failure
    assert json.loads(stream.getvalue().splitlines()[0])["message"] == (
        "unexpected error; the queue's redrive moves it to the DLQ (its last delivery)"
    )
    assert set(metrics.metric_set) == {"RequestsFailed"}
