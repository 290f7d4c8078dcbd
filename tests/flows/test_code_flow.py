"""The whole authorization code journey through the test client (OIDC Core §3.1)."""

from oidc_provider.extensions import db  # noqa: F401

from ..helpers import make_client, make_user


def test_3_1_code_flow_issues_id_token_access_token_and_userinfo(app, browser):
    make_user(app)
    client_id, secret = make_client(app, grants=["refresh_token"])
    result = browser.sign_in_and_authorize(client_id)
    assert result["state"] == result["_sent_state"]
    assert result["iss"] == app.extensions["oidc_settings"].issuer
    response = browser.redeem(client_id, secret, result["code"])
    assert response.status_code == 200, response.json
    body = response.json
    assert body["token_type"] == "Bearer"
    assert {"access_token", "id_token", "refresh_token", "expires_in"} <= set(body)
    info = browser.http.get("/userinfo", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert info.status_code == 200
    assert info.json["preferred_username"] == "alice"
    assert info.json["email_verified"] is True
