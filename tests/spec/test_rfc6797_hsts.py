"""RFC 6797 (HTTP Strict Transport Security): the provider sends ``Strict-Transport-Security``
on responses over https, with ``max-age`` from OIDC_HSTS_MAX_AGE, and never over plain http.
Against a real https server: tests/e2e/test_serving.py."""

from __future__ import annotations

import pytest

ONE_YEAR = 365 * 86400


@pytest.mark.parametrize("path", ["/.well-known/openid-configuration", "/login", "/jwks.json", "/no-such-page"])
def test_6_1_1_max_age_over_https(client, path):
    """§6.1.1: "The REQUIRED "max-age" directive specifies the number of seconds ... that the UA
    regards the host ... as a Known HSTS Host." Every response over https carries it."""
    response = client.get(path, base_url="https://127.0.0.1:5000")
    assert response.headers["Strict-Transport-Security"] == f"max-age={ONE_YEAR}"


def test_7_2_not_over_plain_http(client):
    """§7.2: "An HSTS Host MUST NOT include the STS header field in HTTP responses conveyed over
    non-secure transport." """
    response = client.get("/.well-known/openid-configuration", base_url="http://127.0.0.1:5000")
    assert response.status_code == 200
    assert "Strict-Transport-Security" not in response.headers


def test_6_1_1_configured_max_age_and_zero_turns_it_off(app_factory):
    longer = app_factory(hsts_max_age=2 * ONE_YEAR).test_client()
    response = longer.get("/.well-known/openid-configuration", base_url="https://127.0.0.1:5000")
    assert response.headers["Strict-Transport-Security"] == f"max-age={2 * ONE_YEAR}"
    off = app_factory(hsts_max_age=0).test_client()
    response = off.get("/.well-known/openid-configuration", base_url="https://127.0.0.1:5000")
    assert "Strict-Transport-Security" not in response.headers
