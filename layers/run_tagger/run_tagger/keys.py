"""Portkey keys (DESIGN §1.3): read from Secrets Manager through Powertools parameters, cached.

Key values live only in `SecretStr` fields and in the headers of the outgoing request: they never
reach a log line, an event or an exception message.
"""

from __future__ import annotations

import json
import re
import threading
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, SecretStr, ValidationError, model_validator

from run_tagger.errors import InvalidConfiguration, InvalidRequest, KeysUnavailable

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.parameters import SecretsProvider

# The GetSecretValue errors that mean the secret is gone (§2: permanent); any other (throttling,
# AccessDenied, KMS) may heal without touching the message, so it is transient and the message comes back.
# InvalidRequestException means "scheduled for deletion" only when its message says so: it is also the
# answer for a secret another account reads under the default KMS key, a set-up fault that can heal.
_DOES_NOT_EXIST = "ResourceNotFoundException"
_MARKED_FOR_DELETION = re.compile(r"marked (for )?delet", re.IGNORECASE)
# A value that cannot go into an HTTP header as it is (printable ASCII, no surrounding blanks) would fail
# every call, or be altered on the way: refuse it as configuration.
_HEADER_SAFE = re.compile(r"[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?")
# The one routing header sent; when a secret holds several, the most specific wins.
_ROUTING_PRECEDENCE = (("config", "x-portkey-config"), ("provider", "x-portkey-provider"),
                       ("virtual_key", "x-portkey-virtual-key"))  # fmt: skip


class PortkeyKeys(BaseModel):
    """The JSON of a keys secret: `api_key` and at least one routing key."""

    model_config = ConfigDict(extra="ignore", frozen=True, hide_input_in_errors=True)

    api_key: SecretStr
    virtual_key: SecretStr | None = None
    provider: SecretStr | None = None
    config: SecretStr | None = None
    provider_api_key: SecretStr | None = None

    @model_validator(mode="after")
    def _routable(self) -> PortkeyKeys:
        if not self.api_key.get_secret_value():
            raise ValueError("api_key is empty")
        for name in type(self).model_fields:
            value: SecretStr | None = getattr(self, name)
            if value and not _HEADER_SAFE.fullmatch(value.get_secret_value()):
                raise ValueError(
                    f"{name} is not printable ASCII without surrounding blanks (a stray newline or space?)"
                )
        if not any(getattr(self, name) for name, _ in _ROUTING_PRECEDENCE):
            raise ValueError("needs a routing key: virtual_key, provider or config")
        if self.provider_api_key and not self.provider:
            raise ValueError("provider_api_key is allowed only beside provider")
        return self

    def headers(self) -> dict[str, str]:
        """The Portkey authentication and routing headers of §1.2."""
        headers = {"x-portkey-api-key": self.api_key.get_secret_value()}
        for name, header in _ROUTING_PRECEDENCE:
            value: SecretStr | None = getattr(self, name)
            if value:
                headers[header] = value.get_secret_value()
                break
        if self.provider_api_key and self.provider and "x-portkey-provider" in headers:
            headers["Authorization"] = f"Bearer {self.provider_api_key.get_secret_value()}"
        return headers


class KeyStore:
    """Resolves the keys of a request: the default secret, or the tenant's under the prefix."""

    def __init__(
        self,
        provider: SecretsProvider,
        *,
        default_secret_id: str,
        tenant_secret_prefix: str | None,
        max_age_seconds: int,
    ) -> None:
        self._provider = provider
        self._default_secret_id = default_secret_id
        self._tenant_secret_prefix = tenant_secret_prefix
        self._max_age = max_age_seconds
        # Concurrent lanes asking for the same secret while it is not cached fetch it once, not each.
        self._fetching: dict[str, threading.Lock] = {}
        self._fetching_guard = threading.Lock()
        # Each secret's last value and its keys: every request of a warm batch reads the same cached
        # value, and validating it once is enough. A rotated value differs, so it is validated anew.
        self._parsed: dict[str, tuple[str, PortkeyKeys]] = {}

    def secret_id_for(self, tenant: str | None) -> str:
        """The secret holding `tenant`'s keys; a tenant without a configured prefix is refused."""
        if tenant is None:
            return self._default_secret_id
        if not self._tenant_secret_prefix:
            raise InvalidRequest(f"tenant: {tenant!r} given, but tenants are not enabled (no secret prefix)")
        return f"{self._tenant_secret_prefix}{tenant}"

    def keys_for(self, tenant: str | None, *, refresh: bool = False) -> PortkeyKeys:
        """The keys for `tenant` (None: the default), from the cache unless `refresh`."""
        secret_id = self.secret_id_for(tenant)
        with self._fetching_guard:
            lock = self._fetching.setdefault(secret_id, threading.Lock())
        with lock:
            raw = self._fetch(secret_id, tenant, refresh=refresh)
        parsed = self._parsed.get(secret_id)
        if parsed is not None and parsed[0] == raw:
            return parsed[1]
        keys = self._parse(secret_id, raw)
        self._parsed[secret_id] = (raw, keys)
        return keys

    @staticmethod
    def _parse(secret_id: str, raw: str) -> PortkeyKeys:
        try:
            document = json.loads(raw)
        except ValueError:
            raise InvalidConfiguration(f"keys secret {secret_id!r} is not JSON") from None
        if not isinstance(document, dict):
            raise InvalidConfiguration(f"keys secret {secret_id!r} must be a JSON object")
        try:
            return PortkeyKeys.model_validate(document)
        except ValidationError as exc:
            raise InvalidConfiguration(f"keys secret {secret_id!r}: {_describe(exc)}") from None

    def _fetch(self, secret_id: str, tenant: str | None, *, refresh: bool) -> str:
        from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError

        try:
            value = self._provider.get(secret_id, max_age=self._max_age, force_fetch=refresh)
        except GetParameterError as exc:
            code, message = _client_error(exc)
            gone = None
            if code == _DOES_NOT_EXIST:
                gone = "does not exist"
            elif code == "InvalidRequestException" and _MARKED_FOR_DELETION.search(message):
                gone = "is scheduled for deletion"
            if gone and tenant is not None:
                raise InvalidRequest(
                    f"tenant: unknown tenant {tenant!r} (secret {secret_id!r} {gone})"
                ) from None
            if gone:
                raise InvalidConfiguration(f"keys secret {secret_id!r} {gone}") from None
            raise KeysUnavailable(
                f"keys secret {secret_id!r} could not be fetched ({code or 'error'})"
            ) from None
        if isinstance(value, bytes):
            return value.decode("utf-8", "replace")
        if not isinstance(value, str):
            raise InvalidConfiguration(f"keys secret {secret_id!r} has no string value")
        return value


def _client_error(exc: BaseException) -> tuple[str | None, str]:
    """The AWS error code and message behind a Powertools error (it wraps the ClientError as its
    context). The message is matched, never repeated: it names the secret, not its value, but still."""
    from botocore.exceptions import BotoCoreError, ClientError

    cause = exc.__cause__ or exc.__context__
    if isinstance(cause, ClientError):
        error = cause.response.get("Error", {})
        return str(error.get("Code", "")) or None, str(error.get("Message", ""))
    if isinstance(cause, BotoCoreError):
        return type(cause).__name__, ""
    return None, ""


def _describe(exc: ValidationError) -> str:
    # Only field names and rule texts: pydantic's default message would quote the values.
    parts = []
    for err in exc.errors(include_input=False, include_url=False):
        field = ".".join(str(p) for p in err["loc"])
        parts.append(f"{field} {'is missing' if err['type'] == 'missing' else 'is invalid'}" if field else
                     str(err["msg"]).removeprefix("Value error, "))  # fmt: skip
    return "; ".join(parts)
