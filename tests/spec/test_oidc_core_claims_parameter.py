"""The ``claims`` request parameter (OIDC Core §5.5) and what it may not do: release data the
person did not allow (§3.1.2.4), answer for another user (§3.1.2.2), or ignore an essential
``acr`` it cannot meet (§5.5.1.1)."""

import json

from ..helpers import PASSWORD, make_client, make_user
from ._support import (
    at_consent,
    at_login,
    finish,
    redirected_to_client,
    start,
    tokens_for,
    verified_claims,
)


def _claims(**targets) -> str:
    return json.dumps(targets)


def test_3_1_2_2_sub_value_for_another_user_is_login_required_under_prompt_none(app, browser):
    """§3.1.2.2: "If the sub (subject) Claim is requested with a specific value for the ID
    Token, the Authorization Server MUST only send a positive response if the End-User
    identified by that sub value has an active session ... The Authorization Server MUST NOT
    reply with an ID Token or Access Token for a different user"."""
    make_user(app)
    bob = make_user(app, "bob")
    client_id, _ = make_client(app, trusted=True)
    browser.sign_in_and_authorize(client_id)  # alice's session
    response, _ = start(browser, client_id, prompt="none", claims=_claims(id_token={"sub": {"value": bob}}))
    assert redirected_to_client(response)["error"] == "login_required"
    response, _ = start(browser, client_id, claims=_claims(id_token={"sub": {"value": bob}}))
    assert at_login(response)


def test_3_1_2_2_sub_value_of_the_signed_in_user_succeeds(app, browser):
    alice = make_user(app)
    client_id, secret = make_client(app, trusted=True)
    browser.sign_in_and_authorize(client_id)
    tokens = tokens_for(browser, client_id, secret, claims=_claims(id_token={"sub": {"value": alice}}))
    assert verified_claims(browser.http, tokens["id_token"])["sub"] == alice


def test_3_1_2_2_sub_value_that_is_not_a_string_is_invalid_request(app, browser):
    make_user(app)
    client_id, _ = make_client(app)
    response, _ = start(browser, client_id, claims=_claims(id_token={"sub": {"value": 42}}))
    assert redirected_to_client(response)["error"] == "invalid_request"


def test_3_1_2_4_claims_outside_the_clients_scopes_are_not_released(app, browser):
    """§3.1.2.4: the OP "MUST obtain an authorization decision before releasing information";
    a client registered for ``openid`` only cannot get email or name by asking for the claims."""
    make_user(app)
    client_id, secret = make_client(app, scope="openid")
    request = _claims(userinfo={"email": None}, id_token={"email": None, "name": None})
    tokens = tokens_for(browser, client_id, secret, scope="openid", claims=request)
    id_token = verified_claims(browser.http, tokens["id_token"])
    assert {"email", "name"} & set(id_token) == set()
    info = browser.http.get("/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert set(info.json) == {"sub"}


def test_3_1_2_4_claims_asked_by_name_are_shown_on_the_consent_page_and_released_once_allowed(app, browser):
    make_user(app)
    client_id, secret = make_client(app)
    response, _ = start(browser, client_id, scope="openid", claims=_claims(userinfo={"email": None}))
    response = browser.follow(browser.login(response, "alice", PASSWORD))
    assert at_consent(response)
    page = browser.http.get(response.headers["Location"])
    assert "See your email address" in page.text
    result = redirected_to_client(finish(browser, response))
    tokens = browser.redeem(client_id, secret, result["code"]).json
    info = browser.http.get("/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert info.json["email"] == "alice@example.com"


def test_5_5_1_1_essential_acr_that_cannot_be_met_is_access_denied(app, browser):
    """§5.5.1.1: "If this is an Essential Claim and the requirement cannot be met, then the
    Authorization Server MUST treat that outcome as a failed authentication attempt"."""
    make_user(app)
    client_id, _ = make_client(app)
    request = _claims(id_token={"acr": {"essential": True, "values": ["urn:example:loa4"]}})
    response, params = start(browser, client_id, claims=request)
    assert at_login(response)  # first the person signs in; no level on the ladder is that one
    result = redirected_to_client(browser.follow(browser.login(response)))
    assert (result["error"], result["state"]) == ("access_denied", params["state"])


def test_5_5_1_1_essential_acr_that_can_be_met_is_returned(app, browser):
    """§5.5.1.1: "the Authorization Server MUST return an acr Claim Value that matches one of
    the requested values"."""
    make_user(app)
    client_id, secret = make_client(app, trusted=True)
    request = _claims(id_token={"acr": {"essential": True, "values": ["pwd", "mfa"]}})
    tokens = tokens_for(browser, client_id, secret, claims=request)
    assert verified_claims(browser.http, tokens["id_token"])["acr"] == "pwd"


def test_5_5_1_1_essential_acr_under_prompt_none_is_interaction_required(app, browser):
    """DESIGN: with prompt=none and an insufficient session the answer is
    interaction_required, never a silent downgrade."""
    make_user(app)
    client_id, _ = make_client(app, trusted=True)
    browser.sign_in_and_authorize(client_id)
    request = _claims(id_token={"acr": {"essential": True, "values": ["mfa"]}})
    response, _ = start(browser, client_id, prompt="none", claims=request)
    assert redirected_to_client(response)["error"] == "interaction_required"
