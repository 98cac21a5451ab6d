"""Unit tests of `run_tagger.keys`: Portkey keys from a secret (DESIGN §1.3), never leaking a value."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, cast

import pytest
from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError
from botocore.exceptions import ClientError, EndpointConnectionError
from run_tagger.errors import InvalidConfiguration, InvalidRequest, KeysUnavailable, TagRunError
from run_tagger.keys import KeyStore, PortkeyKeys

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.parameters import SecretsProvider

DEFAULT_SECRET = "portkey/default"
TENANT_PREFIX = "portkey/tenants/"
API_KEY = "pk-live-Sup3rS3cretApiKey"
VIRTUAL_KEY = "vk-openai-Pr0dV1rtualKey"
PROVIDER_API_KEY = "sk-proj-Pr0viderS3cret"
CONFIG = "pc-routing-C0nfigId"
SECRET_VALUES = (API_KEY, VIRTUAL_KEY, PROVIDER_API_KEY, CONFIG)


@dataclass
class FakeSecretsProvider:
    """Stands in for Powertools' `SecretsProvider`: secrets by name, failures as Powertools raises them."""

    secrets: dict[str, str | bytes] = field(default_factory=dict)
    error_codes: dict[str, str] = field(default_factory=dict)
    error_messages: dict[str, str] = field(default_factory=dict)
    calls: list[tuple[str, int | None, bool]] = field(default_factory=list)

    def get(self, name: str, max_age: int | None = None, force_fetch: bool = False) -> str | bytes:
        self.calls.append((name, max_age, force_fetch))
        code = self.error_codes.get(name)
        if code is None and name not in self.secrets:
            code = "ResourceNotFoundException"
        if code is not None:
            try:
                message = self.error_messages.get(name, f"{code} for {name}")
                raise ClientError({"Error": {"Code": code, "Message": message}}, "GetSecretValue")
            except ClientError as exc:
                # Powertools wraps every failure this way: the ClientError is only the context.
                raise GetParameterError(str(exc))  # noqa: B904
        return self.secrets[name]


def store(
    provider: FakeSecretsProvider, *, prefix: str | None = TENANT_PREFIX, max_age_seconds: int = 300
) -> KeyStore:
    return KeyStore(
        cast("SecretsProvider", provider),
        default_secret_id=DEFAULT_SECRET,
        tenant_secret_prefix=prefix,
        max_age_seconds=max_age_seconds,
    )


def keys_from(document: dict[str, object]) -> PortkeyKeys:
    return store(FakeSecretsProvider({DEFAULT_SECRET: json.dumps(document)})).keys_for(None)


def assert_no_secret_in(text: str) -> None:
    for value in SECRET_VALUES:
        assert value not in text


def configuration_refusal(secret: str | bytes) -> InvalidConfiguration:
    with pytest.raises(InvalidConfiguration) as caught:
        store(FakeSecretsProvider({DEFAULT_SECRET: secret})).keys_for(None)
    assert caught.value.code == "invalid_configuration"
    assert caught.value.retryable is False
    assert DEFAULT_SECRET in str(caught.value)
    assert_no_secret_in(str(caught.value))
    assert_no_secret_in(repr(caught.value))
    assert_no_secret_in(json.dumps(caught.value.to_detail()))
    return caught.value


# --- headers -------------------------------------------------------------------------------------


def test_virtual_key_secret_gives_api_key_and_virtual_key_headers() -> None:
    keys = keys_from({"api_key": API_KEY, "virtual_key": VIRTUAL_KEY})

    assert keys.headers() == {"x-portkey-api-key": API_KEY, "x-portkey-virtual-key": VIRTUAL_KEY}


def test_provider_secret_gives_the_provider_header() -> None:
    keys = keys_from({"api_key": API_KEY, "provider": "@openai-prod"})

    assert keys.headers() == {"x-portkey-api-key": API_KEY, "x-portkey-provider": "@openai-prod"}


def test_provider_api_key_is_sent_as_a_bearer_authorization_beside_the_provider() -> None:
    keys = keys_from({"api_key": API_KEY, "provider": "openai", "provider_api_key": PROVIDER_API_KEY})

    assert keys.headers() == {
        "x-portkey-api-key": API_KEY,
        "x-portkey-provider": "openai",
        "Authorization": f"Bearer {PROVIDER_API_KEY}",
    }


def test_config_secret_gives_the_config_header() -> None:
    keys = keys_from({"api_key": API_KEY, "config": CONFIG})

    assert keys.headers() == {"x-portkey-api-key": API_KEY, "x-portkey-config": CONFIG}


@pytest.mark.parametrize(
    ("document", "expected_header"),
    [
        ({"virtual_key": VIRTUAL_KEY, "provider": "@openai-prod", "config": CONFIG}, "x-portkey-config"),
        ({"virtual_key": VIRTUAL_KEY, "config": CONFIG}, "x-portkey-config"),
        ({"virtual_key": VIRTUAL_KEY, "provider": "@openai-prod"}, "x-portkey-provider"),
    ],
)
def test_secret_with_several_routing_keys_sends_exactly_one_routing_header(
    document: dict[str, object], expected_header: str
) -> None:
    headers = keys_from({"api_key": API_KEY, **document}).headers()

    routing = [name for name in headers if name.startswith("x-portkey-") and name != "x-portkey-api-key"]
    assert routing == [expected_header]


def test_provider_api_key_is_not_sent_when_a_config_routes_instead_of_the_provider() -> None:
    keys = keys_from(
        {"api_key": API_KEY, "provider": "openai", "provider_api_key": PROVIDER_API_KEY, "config": CONFIG}
    )

    assert "Authorization" not in keys.headers()


def test_unknown_fields_of_the_secret_are_ignored() -> None:
    keys = keys_from({"api_key": API_KEY, "virtual_key": VIRTUAL_KEY, "rotated_at": "2026-01-01"})

    assert keys.headers()["x-portkey-virtual-key"] == VIRTUAL_KEY


def test_secret_stored_as_binary_is_read_as_utf8_json() -> None:
    provider = FakeSecretsProvider(
        {DEFAULT_SECRET: json.dumps({"api_key": API_KEY, "config": CONFIG}).encode()}
    )

    assert store(provider).keys_for(None).headers()["x-portkey-config"] == CONFIG


def test_repr_of_keys_shows_no_key_value() -> None:
    keys = keys_from(
        {"api_key": API_KEY, "provider": "openai", "provider_api_key": PROVIDER_API_KEY, "config": CONFIG}
    )

    assert_no_secret_in(repr(keys))
    assert_no_secret_in(str(keys))


# --- unusable secrets ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "document",
    [
        {"virtual_key": VIRTUAL_KEY},
        {"api_key": "", "virtual_key": VIRTUAL_KEY},
        {"api_key": None, "virtual_key": VIRTUAL_KEY},
        {"api_key": 12345, "virtual_key": VIRTUAL_KEY},
    ],
    ids=["missing", "empty", "null", "number"],
)
def test_secret_without_a_usable_api_key_is_an_invalid_configuration_naming_the_secret(
    document: dict[str, object],
) -> None:
    error = configuration_refusal(json.dumps(document))

    assert "api_key" in str(error)


@pytest.mark.parametrize(
    "document",
    [
        {"api_key": API_KEY},
        {"api_key": API_KEY, "virtual_key": ""},
        {"api_key": API_KEY, "provider_api_key": PROVIDER_API_KEY},
    ],
    ids=["none", "empty-virtual-key", "provider-api-key-alone"],
)
def test_secret_without_a_routing_key_is_an_invalid_configuration(document: dict[str, object]) -> None:
    error = configuration_refusal(json.dumps(document))

    assert "routing key" in str(error)


def test_provider_api_key_beside_a_virtual_key_but_no_provider_is_refused() -> None:
    error = configuration_refusal(
        json.dumps({"api_key": API_KEY, "virtual_key": VIRTUAL_KEY, "provider_api_key": PROVIDER_API_KEY})
    )

    assert "provider_api_key" in str(error)


def test_secret_that_is_not_json_is_an_invalid_configuration_without_its_text() -> None:
    error = configuration_refusal(f"api_key={API_KEY}\nvirtual_key={VIRTUAL_KEY}")

    assert "not JSON" in str(error)


@pytest.mark.parametrize("secret", [json.dumps([API_KEY, VIRTUAL_KEY]), json.dumps(API_KEY), "null"])
def test_secret_that_is_not_a_json_object_is_an_invalid_configuration_without_its_text(secret: str) -> None:
    error = configuration_refusal(secret)

    assert "JSON object" in str(error)


@pytest.mark.parametrize("field_name", ["api_key", "virtual_key"])
def test_key_that_cannot_be_sent_as_a_header_is_an_invalid_configuration(field_name: str) -> None:
    document = {"api_key": API_KEY, "virtual_key": VIRTUAL_KEY}
    document[field_name] += "\n"

    configuration_refusal(json.dumps(document))


def test_missing_default_secret_is_an_invalid_configuration_naming_it() -> None:
    with pytest.raises(InvalidConfiguration) as caught:
        store(FakeSecretsProvider()).keys_for(None)

    assert DEFAULT_SECRET in str(caught.value)


# --- tenants -------------------------------------------------------------------------------------


def test_tenant_keys_come_from_the_secret_under_the_prefix() -> None:
    provider = FakeSecretsProvider(
        {
            DEFAULT_SECRET: json.dumps({"api_key": "pk-default-key", "virtual_key": "vk-default"}),
            f"{TENANT_PREFIX}acme": json.dumps({"api_key": API_KEY, "virtual_key": VIRTUAL_KEY}),
        }
    )

    keys = store(provider).keys_for("acme")

    assert keys.headers()["x-portkey-api-key"] == API_KEY
    assert [name for name, _, _ in provider.calls] == [f"{TENANT_PREFIX}acme"]


def test_tenant_whose_secret_does_not_exist_is_an_invalid_request_for_an_unknown_tenant() -> None:
    provider = FakeSecretsProvider(
        {DEFAULT_SECRET: json.dumps({"api_key": API_KEY, "virtual_key": VIRTUAL_KEY})}
    )

    with pytest.raises(InvalidRequest) as caught:
        store(provider).keys_for("globex")

    assert "unknown tenant" in str(caught.value)
    assert "globex" in str(caught.value)


MARKED_FOR_DELETION = "You can't perform this operation on the secret because it was marked for deletion."
OTHER_ACCOUNTS_DEFAULT_KEY = (
    "You can't access a secret from a different AWS account if you encrypt the secret with the default KMS "
    "service key."
)


def test_tenant_whose_secret_is_scheduled_for_deletion_is_an_invalid_request_for_an_unknown_tenant() -> None:
    # Given a tenant's secret that Secrets Manager refuses as scheduled for deletion
    secret = f"{TENANT_PREFIX}acme"
    provider = FakeSecretsProvider(
        error_codes={secret: "InvalidRequestException"}, error_messages={secret: MARKED_FOR_DELETION}
    )
    # When its keys are asked for, then the request is refused for good, saying why
    with pytest.raises(InvalidRequest, match=r"unknown tenant 'acme'.*scheduled for deletion"):
        store(provider).keys_for("acme")


def test_the_default_secret_scheduled_for_deletion_is_an_invalid_configuration() -> None:
    provider = FakeSecretsProvider(
        error_codes={DEFAULT_SECRET: "InvalidRequestException"},
        error_messages={DEFAULT_SECRET: MARKED_FOR_DELETION},
    )

    with pytest.raises(InvalidConfiguration, match="scheduled for deletion"):
        store(provider).keys_for(None)


def test_another_invalid_request_for_the_secret_is_transient_not_a_deletion() -> None:
    # Given a secret another account reads under the default KMS key: a set-up fault that can be fixed
    provider = FakeSecretsProvider(
        error_codes={DEFAULT_SECRET: "InvalidRequestException"},
        error_messages={DEFAULT_SECRET: OTHER_ACCOUNTS_DEFAULT_KEY},
    )
    # When the keys are asked for, then the failure is transient: the message comes back, not to the DLQ
    with pytest.raises(KeysUnavailable, match="InvalidRequestException"):
        store(provider).keys_for(None)


def test_tenant_without_a_configured_prefix_is_an_invalid_request_and_reads_no_secret() -> None:
    provider = FakeSecretsProvider(
        {DEFAULT_SECRET: json.dumps({"api_key": API_KEY, "virtual_key": VIRTUAL_KEY})}
    )

    with pytest.raises(InvalidRequest) as caught:
        store(provider, prefix=None).keys_for("acme")

    assert "tenant" in str(caught.value)
    assert provider.calls == []


def test_tenant_secret_with_bad_content_is_an_invalid_configuration_naming_the_tenant_secret() -> None:
    provider = FakeSecretsProvider({f"{TENANT_PREFIX}acme": json.dumps({"api_key": API_KEY})})

    with pytest.raises(InvalidConfiguration) as caught:
        store(provider).keys_for("acme")

    assert f"{TENANT_PREFIX}acme" in str(caught.value)
    assert_no_secret_in(repr(caught.value))


# --- Secrets Manager failures and the cache ------------------------------------------------------


@pytest.mark.parametrize("code", ["ThrottlingException", "InternalServiceError", "RequestTimeout"])
@pytest.mark.parametrize("tenant", [None, "acme"])
def test_secrets_manager_throttling_or_outage_is_retryable(code: str, tenant: str | None) -> None:
    secret_id = DEFAULT_SECRET if tenant is None else f"{TENANT_PREFIX}{tenant}"
    provider = FakeSecretsProvider(error_codes={secret_id: code})

    with pytest.raises(KeysUnavailable) as caught:
        store(provider).keys_for(tenant)

    assert caught.value.retryable is True
    assert caught.value.code == "keys_unavailable"


def test_secrets_manager_unreachable_is_retryable() -> None:
    class UnreachableSecretsProvider(FakeSecretsProvider):
        def get(self, name: str, max_age: int | None = None, force_fetch: bool = False) -> str | bytes:
            try:
                raise EndpointConnectionError(endpoint_url="https://secretsmanager.eu-west-1.amazonaws.com/")
            except EndpointConnectionError as exc:
                raise GetParameterError(str(exc))  # noqa: B904

    with pytest.raises(KeysUnavailable):
        store(UnreachableSecretsProvider()).keys_for(None)


@pytest.mark.parametrize("code", ["AccessDeniedException", "DecryptionFailure"])
def test_secrets_manager_refusing_to_read_the_secret_is_transient(code: str) -> None:
    provider = FakeSecretsProvider(error_codes={DEFAULT_SECRET: code})

    with pytest.raises(TagRunError) as caught:
        store(provider).keys_for(None)

    assert caught.value.retryable is True


def test_keys_are_read_from_the_cache_for_the_configured_max_age() -> None:
    provider = FakeSecretsProvider(
        {DEFAULT_SECRET: json.dumps({"api_key": API_KEY, "virtual_key": VIRTUAL_KEY})}
    )

    store(provider, max_age_seconds=120).keys_for(None)

    assert provider.calls == [(DEFAULT_SECRET, 120, False)]


def test_refresh_bypasses_the_cache() -> None:
    provider = FakeSecretsProvider(
        {DEFAULT_SECRET: json.dumps({"api_key": API_KEY, "virtual_key": VIRTUAL_KEY})}
    )

    store(provider).keys_for(None, refresh=True)

    assert provider.calls == [(DEFAULT_SECRET, 300, True)]


def test_a_rotated_secret_value_is_used_as_soon_as_it_is_fetched() -> None:
    # Given keys already resolved once from the secret
    provider = FakeSecretsProvider(
        {DEFAULT_SECRET: json.dumps({"api_key": API_KEY, "virtual_key": VIRTUAL_KEY})}
    )
    keys = store(provider)
    keys.keys_for(None)
    # When the secret is rotated to a config key and fetched again
    provider.secrets[DEFAULT_SECRET] = json.dumps({"api_key": API_KEY, "config": CONFIG})
    headers = keys.keys_for(None, refresh=True).headers()
    # Then the new value's routing header is sent, not the old one's
    assert headers["x-portkey-config"] == CONFIG
    assert "x-portkey-virtual-key" not in headers


def test_a_secret_rotated_to_an_invalid_value_is_refused_though_its_old_value_was_valid() -> None:
    # Given keys already resolved once from a valid secret
    provider = FakeSecretsProvider(
        {DEFAULT_SECRET: json.dumps({"api_key": API_KEY, "virtual_key": VIRTUAL_KEY})}
    )
    keys = store(provider)
    keys.keys_for(None)
    # When the secret is rotated to a value without a routing key
    provider.secrets[DEFAULT_SECRET] = json.dumps({"api_key": API_KEY})
    # Then the next request is refused as a configuration error, not served with the old keys
    with pytest.raises(InvalidConfiguration):
        keys.keys_for(None, refresh=True)


@pytest.mark.parametrize(
    "value", [f" {API_KEY}", f"{API_KEY} ", "pk-live-Sup3r\u2019S3cret", "pk-live-\u00e9t\u00e9"]
)
def test_a_key_that_is_not_plain_printable_ascii_is_an_invalid_configuration_naming_no_value(
    value: str,
) -> None:
    # Given a secret whose api_key would be altered or refused as an HTTP header
    error = configuration_refusal(json.dumps({"api_key": value, "virtual_key": VIRTUAL_KEY}))
    # Then the secret is refused by name, and no part of the value shows
    assert "api_key" in str(error)
    assert "Sup3r" not in str(error)
    assert "t\u00e9" not in str(error)
