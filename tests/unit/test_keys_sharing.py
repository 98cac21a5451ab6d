"""Keys shared by the lanes of a batch: a secret not yet cached is fetched once, whoever asks for it."""

from __future__ import annotations

import json
import threading
from typing import TYPE_CHECKING, cast

import pytest
from pydantic import ValidationError
from run_tagger.keys import KeyStore, PortkeyKeys

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.parameters import SecretsProvider

SECRET_ID = "portkey/default"
API_KEY = "pk-live-Sup3rS3cretApiKey"
VALUE = json.dumps({"api_key": API_KEY, "virtual_key": "vk-openai-Pr0dV1rtualKey"})


class SlowCachingProvider:
    """Caches as Powertools' provider does; its first fetch holds on until `release` is set."""

    def __init__(self) -> None:
        self.fetches = 0
        self.first_fetch_started = threading.Event()
        self.release = threading.Event()
        self._cache: dict[str, str] = {}

    def get(self, name: str, max_age: int | None = None, force_fetch: bool = False) -> str:
        if name in self._cache and not force_fetch:
            return self._cache[name]
        self.fetches += 1
        if self.fetches == 1:
            self.first_fetch_started.set()
            self.release.wait(timeout=5)
        self._cache[name] = VALUE
        return VALUE


def test_a_lane_asking_for_a_secret_being_fetched_waits_for_it_instead_of_fetching_too() -> None:
    # Given one lane fetching the default secret, not yet cached
    provider = SlowCachingProvider()
    keys = KeyStore(
        cast("SecretsProvider", provider),
        default_secret_id=SECRET_ID,
        tenant_secret_prefix=None,
        max_age_seconds=300,
    )
    first = threading.Thread(target=keys.keys_for, args=(None,))
    first.start()
    assert provider.first_fetch_started.wait(timeout=5)
    # When a second lane asks for it meanwhile
    second = threading.Thread(target=keys.keys_for, args=(None,))
    second.start()
    second.join(timeout=0.2)  # proving a negative: it must still be waiting, not done with a fetch of its own
    still_waiting = second.is_alive()
    provider.release.set()
    first.join(timeout=5)
    second.join(timeout=5)
    # Then it waited, and read the first lane's fetch: one GetSecretValue for both
    assert still_waiting
    assert provider.fetches == 1


def test_a_keys_validation_error_never_quotes_the_value_it_refused() -> None:
    with pytest.raises(ValidationError) as caught:
        PortkeyKeys.model_validate({"api_key": [API_KEY], "virtual_key": {"nested": API_KEY}})

    assert "Sup3r" not in str(caught.value)
