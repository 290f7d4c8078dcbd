"""Asking for a level (issue 3, first part): acr_values is voluntary (OIDC Core §3.1.2.1),
an essential acr and a client's minimum are binding (§5.5.1.1), prompt=none never downgrades
silently. The journeys that step up or enrol are in test_step_up.py."""

from ..helpers import make_client, make_user
from ..spec._support import redirected_to_client, start, tokens_for, verified_claims


def test_3_1_2_1_voluntary_acr_values_under_prompt_none_is_interaction_required(app, browser):
    make_user(app)
    client_id, _ = make_client(app, trusted=True)
    browser.sign_in_and_authorize(client_id)
    response, _ = start(browser, client_id, prompt="none", acr_values="mfa")
    assert redirected_to_client(response)["error"] == "interaction_required"


def test_client_minimum_of_pwd_is_met_by_a_password(app, browser):
    make_user(app)
    client_id, secret = make_client(app, trusted=True, min_acr="pwd")
    tokens = tokens_for(browser, client_id, secret)
    assert verified_claims(browser.http, tokens["id_token"])["acr"] == "pwd"


def test_discovery_lists_the_configured_ladder(app_factory):
    short = app_factory(acr_levels="pwd mfa")
    metadata = short.test_client().get("/.well-known/openid-configuration").json
    assert metadata["acr_values_supported"] == ["pwd", "mfa"]
