"""``oidc-provider serve --certfile --keyfile``: the provider serves https itself (DESIGN:
"Production serving behind a TLS-terminating proxy or with its own certificate"), and under an
https issuer the session cookie is Secure with the ``__Host-`` prefix (RFC 6265bis §4.1.3.2)."""

import os
import re
import sys
from pathlib import Path

import pytest
import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "conformance"))
from live import LiveServer  # noqa: E402

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def tls_server():
    server = LiveServer(database_url=os.environ.get("OIDC_TEST_DATABASE_URL"), workers=1, tls=True)
    try:
        server.prepare()
        server.create_user("alice", "correct horse battery staple")
        server.start()
        yield server
    finally:
        server.stop()


def test_discovery_over_https_names_https_endpoints(tls_server):
    response = requests.get(tls_server.issuer + "/.well-known/openid-configuration",
                            verify=str(tls_server.certfile), timeout=10)
    assert response.status_code == 200
    metadata = response.json()
    assert metadata["issuer"] == tls_server.issuer
    assert all(metadata[k].startswith("https://") for k in metadata if k.endswith("_endpoint"))


def test_login_under_https_uses_a_secure_host_only_cookie_and_checks_the_referer(tls_server):
    http = requests.Session()
    ca = str(tls_server.certfile)  # per request: REQUESTS_CA_BUNDLE would override Session.verify
    page = http.get(tls_server.issuer + "/login", timeout=10, verify=ca)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    cookie = next(c for c in http.cookies)
    assert cookie.name == "__Host-session" and cookie.secure and cookie.path == "/"
    assert "domain" not in page.headers["Set-Cookie"].lower()
    form = {"csrf_token": token, "username": "alice", "password": "correct horse battery staple"}
    # Flask-WTF refuses an https form post without a same-origin Referer (the pages send
    # Referrer-Policy: same-origin so that browsers include it).
    assert page.headers["Referrer-Policy"] == "same-origin"
    refused = http.post(tls_server.issuer + "/login", data=form, allow_redirects=False, timeout=10, verify=ca)
    assert refused.status_code == 400
    accepted = http.post(tls_server.issuer + "/login", data=form, allow_redirects=False, timeout=10,
                         verify=ca, headers={"Referer": tls_server.issuer + "/login"})
    assert accepted.status_code == 302
    new_cookie = next(c for c in http.cookies if c.name == "__Host-session")
    assert new_cookie.value != cookie.value  # a new session id at login
