"""Unit tests of `run_tagger.settings.load_settings`: the environment of DESIGN §1.5."""

from __future__ import annotations

import pytest
from run_tagger.settings import ConfigurationError, Settings, load_settings

SECRET_ID = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:portkey-keys-AbCdEf"


def load(**environ: str) -> Settings:
    return load_settings({"PORTKEY_SECRET_ID": SECRET_ID, **environ})


def refusal(environ: dict[str, str]) -> str:
    with pytest.raises(ConfigurationError) as caught:
        load_settings(environ)
    return str(caught.value)


def test_given_only_the_secret_id_when_loaded_then_every_other_setting_has_its_documented_default() -> None:
    settings = load()

    assert settings.portkey_secret_id == SECRET_ID
    assert settings.portkey_tenant_secret_prefix is None
    assert settings.portkey_base_url == "https://api.portkey.ai/v1"
    assert settings.portkey_timeout_seconds == 10
    assert settings.portkey_max_attempts == 3
    assert settings.event_bus_name == "default"
    assert settings.event_source == "run-tagger"
    assert settings.event_max_bytes == 262144
    assert settings.dead_letter_queue_url is None
    assert settings.idempotency_table_name is None
    assert settings.max_concurrency == 10
    assert settings.max_receive_count is None
    assert settings.secrets_max_age_seconds == 300


def test_given_every_variable_when_loaded_then_each_is_used() -> None:
    settings = load(
        PORTKEY_TENANT_SECRET_PREFIX="portkey/tenants/",
        PORTKEY_BASE_URL="https://gateway.example.com/v1",
        PORTKEY_TIMEOUT_SECONDS="2.5",
        PORTKEY_MAX_ATTEMPTS="5",
        EVENT_BUS_NAME="runs",
        EVENT_SOURCE="com.example.run-tagger",
        EVENT_MAX_BYTES="1048576",
        DEAD_LETTER_QUEUE_URL="https://sqs.eu-west-1.amazonaws.com/123456789012/tag-run-dlq",
        IDEMPOTENCY_TABLE_NAME="tag-run-idempotency",
        MAX_CONCURRENCY="4",
        POWERTOOLS_PARAMETERS_MAX_AGE="60",
    )

    assert settings.portkey_tenant_secret_prefix == "portkey/tenants/"
    assert settings.portkey_base_url == "https://gateway.example.com/v1"
    assert settings.portkey_timeout_seconds == 2.5
    assert settings.portkey_max_attempts == 5
    assert settings.event_bus_name == "runs"
    assert settings.event_source == "com.example.run-tagger"
    assert settings.event_max_bytes == 1048576
    assert settings.dead_letter_queue_url == "https://sqs.eu-west-1.amazonaws.com/123456789012/tag-run-dlq"
    assert settings.idempotency_table_name == "tag-run-idempotency"
    assert settings.max_concurrency == 4
    assert settings.secrets_max_age_seconds == 60


def test_given_no_argument_when_loaded_then_the_process_environment_is_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PORTKEY_SECRET_ID", "from-os-environ")
    monkeypatch.setenv("MAX_CONCURRENCY", "7")

    settings = load_settings()

    assert settings.portkey_secret_id == "from-os-environ"
    assert settings.max_concurrency == 7


@pytest.mark.parametrize("environ", [{}, {"PORTKEY_SECRET_ID": ""}], ids=["unset", "empty"])
def test_given_no_secret_id_when_loaded_then_the_error_names_it(environ: dict[str, str]) -> None:
    message = refusal(environ)

    assert "PORTKEY_SECRET_ID" in message


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8787/v1",
        "http://localhost:8787/v1",
        "http://LOCALHOST/v1",
        "http://[::1]:8787/v1",
        "https://api.portkey.ai/v1",
        "https://gateway.internal.example.com/v1",
    ],
)
def test_given_https_or_plain_http_to_loopback_when_loaded_then_the_base_url_is_accepted(url: str) -> None:
    assert load(PORTKEY_BASE_URL=url).portkey_base_url == url


@pytest.mark.parametrize(
    "url",
    [
        "http://api.portkey.ai/v1",
        "http://10.0.0.12:8787/v1",
        "http://gateway.internal/v1",
        "http://localhost.evil.example/v1",
        "http://127.0.0.1@evil.example/v1",
    ],
)
def test_given_plain_http_to_a_host_off_this_machine_when_loaded_then_it_is_refused(url: str) -> None:
    message = refusal({"PORTKEY_SECRET_ID": SECRET_ID, "PORTKEY_BASE_URL": url})

    assert "PORTKEY_BASE_URL" in message
    assert "https" in message


@pytest.mark.parametrize("url", ["api.portkey.ai/v1", "ftp://api.portkey.ai/v1", "https:///v1"])
def test_given_a_base_url_that_is_not_an_absolute_http_url_when_loaded_then_it_is_refused(url: str) -> None:
    assert "PORTKEY_BASE_URL" in refusal({"PORTKEY_SECRET_ID": SECRET_ID, "PORTKEY_BASE_URL": url})


@pytest.mark.parametrize(
    "url",
    [
        "https://api.portkey.ai/v1 ",
        "https://api.portkey.ai/v1\n",
        " https://api.portkey.ai/v1",
        "https://api.portkey.ai/v 1",
    ],
    ids=["trailing-space", "trailing-newline", "leading-space", "inner-space"],
)
def test_given_a_base_url_with_a_blank_when_loaded_then_it_is_refused_saying_so(url: str) -> None:
    # A YAML block scalar easily leaves a newline; sent as it is, every path would be a 404.
    message = refusal({"PORTKEY_SECRET_ID": SECRET_ID, "PORTKEY_BASE_URL": url})

    assert "PORTKEY_BASE_URL" in message
    assert "blanks" in message


@pytest.mark.parametrize(
    "url", ["https://api.portkey.ai:99999/v1", "http://127.0.0.1:port/v1", "https://api.portkey.ai:0/v1"]
)
def test_given_a_base_url_with_an_invalid_port_when_loaded_then_it_is_refused(url: str) -> None:
    message = refusal({"PORTKEY_SECRET_ID": SECRET_ID, "PORTKEY_BASE_URL": url})

    assert "PORTKEY_BASE_URL" in message
    assert "port" in message


@pytest.mark.parametrize("url", ["https://api.portkey.ai/v1?team=search", "https://api.portkey.ai/v1#runs"])
def test_given_a_base_url_with_a_query_or_a_fragment_when_loaded_then_it_is_refused(url: str) -> None:
    # Every call's path is appended to the base URL: after a query or a fragment it would be lost.
    message = refusal({"PORTKEY_SECRET_ID": SECRET_ID, "PORTKEY_BASE_URL": url})

    assert "PORTKEY_BASE_URL" in message
    assert "query or a fragment" in message


def test_given_an_event_source_longer_than_eventbridge_takes_when_loaded_then_it_is_refused() -> None:
    assert load(EVENT_SOURCE="s" * 256).event_source == "s" * 256
    assert "EVENT_SOURCE" in refusal({"PORTKEY_SECRET_ID": SECRET_ID, "EVENT_SOURCE": "s" * 257})


def test_given_a_base_url_with_a_trailing_slash_when_loaded_then_paths_join_without_a_double_slash() -> None:
    assert load(PORTKEY_BASE_URL="https://gateway.example.com/v1/").portkey_base_url == (
        "https://gateway.example.com/v1"
    )


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("PORTKEY_MAX_ATTEMPTS", "three"),
        ("PORTKEY_MAX_ATTEMPTS", "0"),
        ("PORTKEY_TIMEOUT_SECONDS", "ten"),
        ("PORTKEY_TIMEOUT_SECONDS", "-1"),
        ("MAX_CONCURRENCY", "1.5"),
        ("MAX_CONCURRENCY", "0"),
        ("EVENT_MAX_BYTES", "256KB"),
        ("POWERTOOLS_PARAMETERS_MAX_AGE", "-5"),
    ],
)
def test_given_a_bad_number_when_loaded_then_the_error_names_the_variable(name: str, value: str) -> None:
    message = refusal({"PORTKEY_SECRET_ID": SECRET_ID, name: value})

    assert name in message


def test_given_several_bad_variables_when_loaded_then_each_is_named() -> None:
    message = refusal({"PORTKEY_MAX_ATTEMPTS": "x", "MAX_CONCURRENCY": "y"})

    for name in ("PORTKEY_SECRET_ID", "PORTKEY_MAX_ATTEMPTS", "MAX_CONCURRENCY"):
        assert name in message


@pytest.mark.parametrize(
    "name",
    [
        "PORTKEY_TENANT_SECRET_PREFIX",
        "DEAD_LETTER_QUEUE_URL",
        "IDEMPOTENCY_TABLE_NAME",
        "PORTKEY_BASE_URL",
        "PORTKEY_TIMEOUT_SECONDS",
        "PORTKEY_MAX_ATTEMPTS",
        "EVENT_BUS_NAME",
        "EVENT_SOURCE",
        "EVENT_MAX_BYTES",
        "MAX_CONCURRENCY",
    ],
)
def test_given_an_empty_optional_variable_as_sam_passes_it_when_loaded_then_it_means_unset(name: str) -> None:
    assert load(**{name: ""}) == load()
