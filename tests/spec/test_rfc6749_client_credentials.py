"""The client credentials grant for system accounts (RFC 6749 §4.4; RFC 9068 for the access
token it yields)."""

from __future__ import annotations

from oidc_provider.admin import services as admin_services
from oidc_provider.extensions import db
from oidc_provider.models import Account

from ..helpers import make_client
from ._clients import claims_of, counts, set_columns


def _service(app, name="backup-job", scope=""):
    with app.app_context():
        client, secret = admin_services.create_service(name=name, scope=scope)
        db.session.commit()
        return client.client_id, secret


def _token(http, client_id, secret, **extra):
    return http.post("/token", data={"grant_type": "client_credentials", **extra}, auth=(client_id, secret))


def test_4_4_2_service_credentials_get_an_access_token(app, client):
    """RFC 6749 §4.4.2: "grant_type REQUIRED. Value MUST be set to "client_credentials"" and
    §4.4.3: "If the access token request is valid and authorized, the authorization server
    issues an access token"."""
    client_id, secret = _service(app)
    response = _token(client, client_id, secret)
    assert response.status_code == 200, response.json
    assert response.json["token_type"] == "Bearer"
    assert response.json["expires_in"] > 0
    assert response.headers["Cache-Control"] == "no-store"


def test_4_4_3_no_refresh_token_and_no_id_token(app, client):
    """RFC 6749 §4.4.3: "A refresh token SHOULD NOT be included"; no person signed in, so there
    is no ID token (OIDC Core §2 describes an End-User's authentication)."""
    client_id, secret = _service(app, scope="api:read")
    body = _token(client, client_id, secret, scope="openid offline_access api:read").json
    assert "refresh_token" not in body
    assert "id_token" not in body
    assert body["scope"] == "api:read"


def test_rfc9068_2_2_access_token_subject_is_the_client(app, client):
    """RFC 9068 §2.2: "In cases of access tokens obtained through grants where no resource
    owner is involved, such as the client credentials grant, the value of sub SHOULD correspond
    to an identifier the authorization server uses to indicate the client application"."""
    client_id, secret = _service(app)
    claims = claims_of(_token(client, client_id, secret).json["access_token"])
    assert claims["sub"] == client_id
    assert claims["client_id"] == client_id
    assert "auth_time" not in claims


def test_3_3_scope_is_limited_to_what_the_service_may_ask(app, client):
    """RFC 6749 §3.3: "The authorization server MAY fully or partially ignore the scope
    requested by the client ... If the issued access token scope is different from the one
    requested by the client, the authorization server MUST include the "scope" response
    parameter"."""
    client_id, secret = _service(app, scope="api:read")
    body = _token(client, client_id, secret, scope="api:read api:write").json
    assert body["scope"] == "api:read"
    assert claims_of(body["access_token"])["scope"] == "api:read"


def test_4_4_relying_party_cannot_use_client_credentials(app, client):
    """RFC 6749 §5.2: ``unauthorized_client``: "The authenticated client is not authorized to
    use this authorization grant type"."""
    client_id, secret = make_client(app)
    before = counts(app)
    response = _token(client, client_id, secret)
    assert response.status_code == 400
    assert response.json["error"] == "unauthorized_client"
    assert counts(app) == before


def test_4_4_public_client_cannot_use_client_credentials(app, client):
    """RFC 6749 §4.4: "The client credentials grant type MUST only be used by confidential
    clients"."""
    client_id, _ = make_client(app, public=True)
    response = client.post("/token", data={"grant_type": "client_credentials", "client_id": client_id})
    assert response.status_code == 401
    assert response.json["error"] == "invalid_client"


def test_4_4_2_disabled_system_account_gets_no_token(app, client):
    """RFC 6749 §4.4.2: "The authorization server MUST authenticate the client"; a disabled
    system account's credential no longer authenticates (``invalid_client``)."""
    client_id, secret = _service(app)
    set_columns(app, Account, Account.username == "backup-job", disabled=True)
    before = counts(app)
    response = _token(client, client_id, secret)
    assert response.status_code == 401
    assert response.json["error"] == "invalid_client"
    assert counts(app) == before


def test_4_4_2_wrong_secret_is_invalid_client(app, client):
    """RFC 6749 §4.4.2 and §5.2: client authentication failed -> ``invalid_client``."""
    client_id, _ = _service(app)
    response = _token(client, client_id, "not-the-secret")
    assert response.status_code == 401
    assert response.json["error"] == "invalid_client"
    assert response.headers["WWW-Authenticate"].startswith("Basic ")
