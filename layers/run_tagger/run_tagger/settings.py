"""The function's configuration (DESIGN §1.5), parsed once from the environment into a typed model."""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

DEFAULT_PORTKEY_BASE_URL = "https://api.portkey.ai/v1"


class ConfigurationError(Exception):
    """The environment is not a usable configuration; the message names the variable."""


def is_loopback_host(host: str) -> bool:
    """True for `localhost` and loopback addresses, the only hosts plain http may reach."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Settings(BaseModel):
    """Environment variables of the function; field aliases are the variable names."""

    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    portkey_secret_id: Annotated[str, Field(alias="PORTKEY_SECRET_ID", min_length=1)]
    portkey_tenant_secret_prefix: Annotated[str | None, Field(alias="PORTKEY_TENANT_SECRET_PREFIX")] = None
    portkey_base_url: Annotated[str, Field(alias="PORTKEY_BASE_URL")] = DEFAULT_PORTKEY_BASE_URL
    portkey_timeout_seconds: Annotated[float, Field(alias="PORTKEY_TIMEOUT_SECONDS", gt=0, le=900)] = 10.0
    portkey_max_attempts: Annotated[int, Field(alias="PORTKEY_MAX_ATTEMPTS", ge=1, le=10)] = 3
    event_bus_name: Annotated[str, Field(alias="EVENT_BUS_NAME", min_length=1)] = "default"
    event_source: Annotated[str, Field(alias="EVENT_SOURCE", min_length=1, max_length=256)] = "run-tagger"
    event_max_bytes: Annotated[int, Field(alias="EVENT_MAX_BYTES", ge=4096, le=1048576)] = 262144
    dead_letter_queue_url: Annotated[str | None, Field(alias="DEAD_LETTER_QUEUE_URL")] = None
    idempotency_table_name: Annotated[str | None, Field(alias="IDEMPOTENCY_TABLE_NAME")] = None
    max_concurrency: Annotated[int, Field(alias="MAX_CONCURRENCY", ge=1, le=100)] = 10
    # The queue's redrive maxReceiveCount: a transient failure on that delivery is dead-lettered with its
    # reason, which SQS's own move to the DLQ would not keep. Unset: SQS moves the message, reason-less.
    max_receive_count: Annotated[int | None, Field(alias="MAX_RECEIVE_COUNT", ge=1, le=1000)] = None
    # Powertools' own variable; its default (5 s) would refetch keys on nearly every warm invocation.
    secrets_max_age_seconds: Annotated[int, Field(alias="POWERTOOLS_PARAMETERS_MAX_AGE", ge=0)] = 300

    @field_validator("portkey_base_url")
    @classmethod
    def _https_unless_loopback(cls, value: str) -> str:
        if any(char.isspace() or not char.isprintable() for char in value):
            # requests would percent-encode it into every path: each call a 404, the cause well hidden.
            raise ValueError("must not contain blanks or control characters (a stray space or newline?)")
        parts = urlsplit(value)
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise ValueError("must be an absolute http(s) URL such as https://api.portkey.ai/v1")
        try:
            port = parts.port  # urlsplit checks the port only when it is read; None: the scheme's
        except ValueError:
            port = 0
        if port == 0:
            raise ValueError("has a port that is not a number from 1 to 65535")
        if parts.scheme == "http" and not is_loopback_host(parts.hostname):
            raise ValueError("plain http is allowed only for loopback hosts; use https")
        if parts.query or parts.fragment:
            raise ValueError("must not carry a query or a fragment")
        return value.rstrip("/")

    @field_validator("portkey_tenant_secret_prefix", "dead_letter_queue_url", "idempotency_table_name")
    @classmethod
    def _blank_is_unset(cls, value: str | None) -> str | None:
        # SAM passes optional parameters as empty strings: treat them as unset.
        return value or None


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Parse the environment; a bad value is a `ConfigurationError` naming the variable."""
    env = os.environ if environ is None else environ
    names = {field.alias for field in Settings.model_fields.values() if field.alias}
    # An empty optional variable means "use the default", as SAM leaves unset parameters empty.
    given = {name: env[name] for name in names if env.get(name, "") != ""}
    try:
        return Settings.model_validate(given)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'environment'}: {_describe(err)}"
            for err in exc.errors()
        )
        raise ConfigurationError(f"invalid configuration: {problems}") from None


def _describe(err: Mapping[str, object]) -> str:
    if err.get("type") == "missing":
        return "is required but not set"
    return str(err.get("msg", "invalid value")).removeprefix("Value error, ")
