"""A per-client PKCE switch: confidential clients that cannot send a code_challenge (Gitea) are
relaxed one by one, never public clients (RFC 9700 §2.1.1: public clients MUST use PKCE)."""

import pytest

from oidc_provider.admin import clients as admin_clients
from oidc_provider.problems import Problem

from ..helpers import make_client, make_user, query_of


def _authorize_without_pkce(browser, client_id):
    params = browser.authorize_params(client_id, code_challenge=None, code_challenge_method=None)
    return browser.follow(browser.http.get("/authorize", query_string=params))


def test_confidential_client_registered_no_pkce_may_omit_the_code_challenge(app, browser):
    make_user(app)
    client_id, secret = make_client(app, require_pkce=False, trusted=True)
    response = _authorize_without_pkce(browser, client_id)
    response = browser.follow(browser.login(response))
    code = query_of(response.headers["Location"])["code"]
    tokens = browser.http.post("/token", data={"grant_type": "authorization_code", "code": code,
                                               "redirect_uri": "https://rp.example/cb"}, auth=(client_id, secret))
    assert tokens.status_code == 200, tokens.json


def test_other_confidential_clients_still_need_pkce(app, browser):
    make_user(app)
    make_client(app, require_pkce=False, name="Gitea")
    client_id, _ = make_client(app, trusted=True)
    response = _authorize_without_pkce(browser, client_id)
    assert query_of(response.headers["Location"])["error"] == "invalid_request"


def test_public_clients_cannot_be_relaxed(ctx):
    with pytest.raises(Problem, match="public clients always use PKCE"):
        admin_clients.create_client(name="SPA", redirect_uris=["https://spa.example/cb"], public=True,
                                    require_pkce=False)
