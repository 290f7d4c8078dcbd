"""The metrics settings: ``OIDC_METRICS`` (off by default) and ``OIDC_METRICS_TOKEN`` (a secret
of at least 32 bytes, never shown)."""

from __future__ import annotations

import pytest

from oidc_provider.settings import Settings, SettingsError

GOOD = {"OIDC_ISSUER": "https://id.example.com", "OIDC_SECRET_KEY": "k" * 32,
        "OIDC_DATABASE_URL": "sqlite:///tmp/x.db"}


def _load(**env) -> Settings:
    return Settings.from_env({**GOOD, **env}).validate()


def test_metrics_are_off_by_default_and_turned_on_by_a_boolean():
    assert _load().metrics is False
    assert _load(OIDC_METRICS="true").metrics is True
    assert _load(OIDC_METRICS="off").metrics is False


def test_a_metrics_value_that_is_no_boolean_is_named():
    with pytest.raises(SettingsError) as caught:
        _load(OIDC_METRICS="sometimes")
    assert str(caught.value) == "invalid configuration: OIDC_METRICS: 'sometimes' is not a valid bool"


def test_a_short_metrics_token_is_refused_and_a_token_is_never_in_the_repr():
    with pytest.raises(SettingsError) as caught:
        _load(OIDC_METRICS="true", OIDC_METRICS_TOKEN="short")
    assert str(caught.value) == "invalid configuration: OIDC_METRICS_TOKEN must be at least 32 bytes"
    token = "t" * 32
    assert token not in repr(_load(OIDC_METRICS="true", OIDC_METRICS_TOKEN=token))
