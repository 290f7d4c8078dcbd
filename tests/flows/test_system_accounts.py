"""System accounts and their credentials (issue 5): "one live credential at a time (rotate
issues a new secret and revokes the old, together with the access tokens it issued);
private_key_jwt with a registered public JWK or JWKS URL; revoke; disable/enable. Admins may
issue or revoke any system account's credential; so may a user holding a role named like the
system account", and the PostgreSQL credentials stored for a system account, fetched by the
account itself or a user with the same-named role, every fetch audited.

Operations run directly (``oidc_provider.admin.run`` with the CLI's caller) and through the
admin API; tokens are checked at the real /token, /introspect and bearer endpoints; a
``jwks_uri`` is served by a real HTTP server on loopback.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from joserfc import jwk
from sqlalchemy import select

from oidc_provider import admin
from oidc_provider.admin import Caller
from oidc_provider.extensions import db
from oidc_provider.models import Account, AuditEvent, Client, DatabaseCredential
from oidc_provider.oauth.remote_keys import RemoteKeyError, RemoteKeySets, public_address
from oidc_provider.problems import Problem

from ..conftest import ISSUER
from ..e2e.test_federation_upstream_claims import TransactionProbe
from ..helpers import make_user
from ..spec._clients import assertion_form, client_assertion, public_jwks, rsa_key
from ._admin import APP, admin_token, audit_since, bearer, define_role, grant, last_audit_id, personal_token, revoke

TOKEN_URL = ISSUER + "/token"
SERVICE = "backup-job"
DSN = "postgresql://backup@db.internal:5432/backups?sslmode=verify-full"
DB_PASSWORD = "db-Pa55word-that-must-never-leak"
CREDENTIAL_PATH = f"/api/admin/services/{SERVICE}/credential"
FETCH_PATH = f"/api/service-accounts/{SERVICE}/database-credentials"


# ---- set-up ----

def run(app, name: str, params: dict):
    """An operation as the CLI runs it on the server, committed."""
    with app.app_context():
        result = admin.run(name, Caller("cli"), params)
        db.session.commit()
        return result


def create_service(app, name: str = SERVICE) -> tuple[str, str]:
    created = run(app, "services.create", {"name": name})
    return created["client_id"], created["client_secret"]


def cc_token(http, client_id: str, secret: str):
    return http.post("/token", data={"grant_type": "client_credentials"}, auth=(client_id, secret))


def cc_token_with_key(http, client_id: str, key):
    assertion = client_assertion(key, client_id, TOKEN_URL, alg=_alg(key))
    return http.post("/token", data=assertion_form(client_id, assertion, grant_type="client_credentials"))


def _alg(key) -> str:
    return "ES256" if key.key_type == "EC" else "RS256"


def introspect(http, client_id: str, secret: str, token: str) -> dict:
    response = http.post("/introspect", data={"token": token}, auth=(client_id, secret))
    assert response.status_code == 200, response.json
    return response.json


def assert_invalid_client(response):
    """RFC 6749 §5.2: client authentication failed -> ``invalid_client``, 401 here."""
    assert response.status_code == 401, (response.status_code, response.json)
    assert response.json["error"] == "invalid_client"


def ec_key():
    key = jwk.ECKey.generate_key("P-256", private=True)
    key.ensure_kid()
    return key


def all_audit_text(app) -> str:
    with app.app_context():
        rows = db.session.scalars(select(AuditEvent)).all()
        return json.dumps([[r.event, r.reason, r.detail, r.account, r.actor] for r in rows], default=str)


@pytest.fixture
def logged():
    """Every line the provider logs, as the JSON log format writes it (fields included)."""
    from oidc_provider.logs import JsonFormatter

    lines: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record):
            lines.append(JsonFormatter().format(record))

    handler = Collect(level=logging.DEBUG)
    logger = logging.getLogger("oidc_provider")
    logger.addHandler(handler)
    yield lines
    logger.removeHandler(handler)


class JWKSServer:
    """A relying party's jwks_uri on loopback: real HTTP, with the answer set per test."""

    def __init__(self):
        self.status, self.body, self.headers, self.hits = 200, b"{}", {}, 0
        self.on_request = None  # called before each answer (a database probe, say)
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - the http.server API
                outer.hits += 1
                if outer.on_request is not None:
                    outer.on_request(self.path)
                self.send_response(outer.status)
                self.send_header("Content-Type", "application/json")
                for name, value in outer.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(outer.body)))
                self.end_headers()
                self.wfile.write(outer.body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/jwks.json"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def serve(self, *keys, status=200, headers=None):
        self.status, self.headers = status, headers or {}
        self.body = json.dumps({"keys": [k.as_dict(private=False) for k in keys]}).encode()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def jwks_server():
    server = JWKSServer()
    yield server
    server.close()


@pytest.fixture
def loopback_keys(app_factory):
    """(app, test client) of a provider that may fetch keys from a loopback jwks_uri
    (OIDC_JWKS_URI_ALLOW_LOOPBACK), as these tests' key server is on 127.0.0.1."""
    app = app_factory(jwks_uri_allow_loopback=True)
    return app, app.test_client()


# ---- one live credential at a time ----

def test_rfc6749_10_rotate_revokes_the_old_secret_and_its_access_tokens(app, client):
    """DESIGN: "one live credential at a time (issuing a new one revokes the old)"; RFC 6749
    §5.2: the old secret is ``invalid_client``; RFC 7662 §2.2: a revoked token is not active."""
    client_id, old_secret = create_service(app)
    old_token = cc_token(client, client_id, old_secret).json["access_token"]
    assert introspect(client, client_id, old_secret, old_token)["active"] is True

    before = last_audit_id(app)
    new_secret = run(app, "services.rotate", {"name": SERVICE})["client_secret"]

    assert new_secret != old_secret
    assert_invalid_client(cc_token(client, client_id, old_secret))
    assert introspect(client, client_id, new_secret, old_token) == {"active": False}
    refused = client.get(FETCH_PATH, headers=bearer(old_token))
    assert refused.status_code == 401
    assert refused.json["error"] == "invalid_token"
    assert cc_token(client, client_id, new_secret).status_code == 200
    rotated = [e for e in audit_since(app, before) if e["event"] == "admin:service:credential-rotated"]
    assert rotated[0]["actor"] == "cli" and rotated[0]["detail"]["tokens_revoked"] == "all"
    assert new_secret not in all_audit_text(app) and old_secret not in all_audit_text(app)


def test_rfc7523_2_2_set_key_switches_to_private_key_jwt_and_ends_the_secret(app, client):
    """RFC 7523 §2.2: the client authenticates with a JWT signed by its key; the secret it had
    stops working, with the tokens it obtained."""
    client_id, secret = create_service(app)
    old_token = cc_token(client, client_id, secret).json["access_token"]
    key = ec_key()

    view = run(app, "services.set-key", {"name": SERVICE, "jwks": key.as_dict(private=False)})

    assert view["token_endpoint_auth_method"] == "private_key_jwt"
    assert view["has_secret"] is False and view["key_ids"] == [key.kid]
    assert_invalid_client(cc_token(client, client_id, secret))
    response = cc_token_with_key(client, client_id, key)
    assert response.status_code == 200, response.json
    assert introspect_refused(client, old_token)
    # An RSA set replaces the EC key: the EC key stops working at once.
    rsa = rsa_key()
    run(app, "services.set-key", {"name": SERVICE, "jwks": public_jwks(rsa)})
    assert_invalid_client(cc_token_with_key(client, client_id, key))
    assert cc_token_with_key(client, client_id, rsa).status_code == 200


def introspect_refused(http, token: str) -> bool:
    response = http.get(FETCH_PATH, headers=bearer(token))
    return response.status_code == 401 and response.json["error"] == "invalid_token"


@pytest.mark.parametrize("bad", [
    {"kty": "oct", "k": "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0"},  # symmetric
    "private",  # an EC private key
    {"keys": []},
    {"keys": [{"kty": "RSA", "n": "AQAB"}]},  # malformed
])
def test_rfc7523_2_2_set_key_refuses_anything_but_public_asymmetric_keys(app, bad):
    """Only public keys are registered (a private member means the key leaked; a symmetric key
    would let whoever reads it sign assertions); nothing changes on refusal."""
    client_id, secret = create_service(app)
    jwks = ec_key().as_dict(private=True) if bad == "private" else bad
    with pytest.raises(Problem):
        run(app, "services.set-key", {"name": SERVICE, "jwks": jwks})
    with app.app_context():
        assert db.session.scalar(select(Client.token_endpoint_auth_method).where(Client.client_id == client_id)) \
            == "client_secret_basic"


def test_rfc7523_set_key_refuses_a_jwks_uri_that_is_not_https(app):
    """The keys must come from the client over an authenticated channel: https, or http on
    loopback only (the same rule as the issuer's)."""
    create_service(app)
    for uri in ("http://keys.example/jwks.json", "ftp://127.0.0.1/jwks", "https://user:pw@keys.example/j",
                "https://keys.example/jwks#frag", "not a url"):
        with pytest.raises(Problem):
            run(app, "services.set-key", {"name": SERVICE, "jwks_uri": uri})
    with pytest.raises(Problem):
        run(app, "services.set-key", {"name": SERVICE})  # neither jwks nor jwks_uri


def test_oidc_core_10_1_1_jwks_uri_keys_are_fetched_and_cached(loopback_keys, jwks_server):
    """OIDC Core §9/§10.1.1: the client's keys published at its jwks_uri verify its assertions;
    the set is fetched over real HTTP once and cached; an unknown kid right after a fetch does
    not fetch again (at most once per 30 s) and is ``invalid_client``."""
    app, client = loopback_keys
    client_id, secret = create_service(app)
    first, second = ec_key(), rsa_key()
    jwks_server.serve(first)
    view = run(app, "services.set-key", {"name": SERVICE, "jwks_uri": jwks_server.url})
    assert view["jwks_uri"] == jwks_server.url and view["has_secret"] is False

    assert cc_token_with_key(client, client_id, first).status_code == 200
    assert cc_token_with_key(client, client_id, first).status_code == 200
    assert jwks_server.hits == 1
    assert_invalid_client(cc_token(client, client_id, secret))

    jwks_server.serve(second)
    assert_invalid_client(cc_token_with_key(client, client_id, second))
    assert jwks_server.hits == 1


@pytest.mark.parametrize("case", ["status_500", "redirect", "too_big", "not_json", "private_key", "closed"])
def test_rfc7523_3_jwks_uri_failures_are_invalid_client_and_logged(loopback_keys, jwks_server, logged, case):
    """RFC 7523 §3: an assertion that cannot be verified is ``invalid_client``: a jwks_uri that
    fails, redirects, answers too much or not a public JWK set never turns into a 500, and the
    failure is logged without the response."""
    app, client = loopback_keys
    client_id, _ = create_service(app)
    key = ec_key()
    url = jwks_server.url
    if case == "status_500":
        jwks_server.serve(key, status=500)
    elif case == "redirect":
        jwks_server.serve(key, status=302, headers={"Location": url})
    elif case == "too_big":
        jwks_server.body = b'{"keys": [], "padding": "' + b"x" * 70_000 + b'"}'
    elif case == "not_json":
        jwks_server.body = b"<html>secret-page-body</html>"
    elif case == "private_key":
        jwks_server.body = json.dumps({"keys": [key.as_dict(private=True)]}).encode()
    else:
        url = "http://127.0.0.1:9/jwks.json"  # discard port: nothing listens
    run(app, "services.set-key", {"name": SERVICE, "jwks_uri": url})

    assert_invalid_client(cc_token_with_key(client, client_id, key))
    failures = [line for line in logged if "oauth:jwks-uri:fetch-failed" in line]
    assert len(failures) == 1
    assert json.loads(failures[0])["client"] == client_id
    assert "secret-page-body" not in "".join(logged) and '"d"' not in "".join(logged)


def test_ssrf_jwks_uri_host_name_resolving_to_loopback_is_refused_at_fetch_time(app, client, jwks_server,
                                                                               logged, app_factory):
    """OIDC Core §10.1.1 keys fetched from a client's jwks_uri, without server-side request
    forgery (issue 12): a jwks_uri whose *name* resolves to a loopback
    address ("localhost") passes registration (it is not an address) but is refused when the
    keys are fetched: ``invalid_client``, the key server never asked, the reason logged. With
    OIDC_JWKS_URI_ALLOW_LOOPBACK the same set verifies the assertion."""
    client_id, _ = create_service(app)
    key = ec_key()
    jwks_server.serve(key)
    url = jwks_server.url.replace("127.0.0.1", "localhost")
    run(app, "services.set-key", {"name": SERVICE, "jwks_uri": url})
    assert_invalid_client(cc_token_with_key(client, client_id, key))
    assert jwks_server.hits == 0
    failures = [json.loads(line) for line in logged if "oauth:jwks-uri:fetch-failed" in line]
    assert [f["reason"] for f in failures] == ["the host resolves to a loopback address"]

    allowed = app_factory(jwks_uri_allow_loopback=True)
    assert cc_token_with_key(allowed.test_client(), client_id, key).status_code == 200
    assert jwks_server.hits == 1


def test_no_database_transaction_is_open_while_a_jwks_uri_answers(loopback_keys, jwks_server):
    """Issue 12 ("upstream HTTP calls ... never run inside a transaction holding a
    database-wide lock"): the token request ends its transaction before fetching the client's
    keys, so a slow key server (up to 5 s) stalls no other request."""
    app, client = loopback_keys
    client_id, _ = create_service(app)
    key = ec_key()
    jwks_server.serve(key)
    run(app, "services.set-key", {"name": SERVICE, "jwks_uri": jwks_server.url})
    probe = TransactionProbe(app.extensions["oidc_settings"].database_url)
    jwks_server.on_request = probe
    try:
        assert cc_token_with_key(client, client_id, key).status_code == 200
    finally:
        if probe.engine is not None:
            probe.engine.dispose()
    assert probe.found == [("/jwks.json", False)]


@pytest.mark.parametrize("host", ["10.0.0.1", "172.16.0.1", "192.168.1.1", "169.254.169.254", "100.64.0.1",
                                  "0.0.0.0", "224.0.0.1", "fe80::1", "fc00::1", "::ffff:10.0.0.1", "::"])
def test_ssrf_jwks_uri_resolving_to_private_link_local_or_reserved_addresses_is_refused(host):
    """SSRF: whatever a name resolves to (here the resolver's own answer for each address) is
    checked at fetch time; private, link-local (cloud metadata), shared, reserved, multicast
    and IPv4-mapped private addresses are refused even with loopback allowed."""
    with pytest.raises(RemoteKeyError) as caught:
        public_address(host, 443, allow_loopback=True)
    assert "private, link-local or reserved" in str(caught.value)


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1", "127.0.0.2"])
def test_ssrf_jwks_uri_loopback_only_when_allowed(host):
    with pytest.raises(RemoteKeyError):
        public_address(host, 443)
    assert ipaddress.ip_address(public_address(host, 443, allow_loopback=True)).is_loopback


def test_ssrf_public_addresses_are_fetched_from_the_checked_address():
    assert public_address("93.184.215.14", 443) == "93.184.215.14"
    with pytest.raises(RemoteKeyError):
        public_address("no-such-host.invalid", 443)


def test_oidc_core_10_1_1_unknown_kid_refetches_at_most_every_30_seconds(jwks_server):
    """OIDC Core §10.1.1: a new kid in the assertion is how a client announces a rotated key;
    the provider fetches again, but at most once per 30 s, and after 5 minutes in any case."""
    now = [1000.0]
    cache = RemoteKeySets(clock=lambda: now[0], allow_loopback=True)
    first, second = ec_key(), ec_key()
    jwks_server.serve(first)
    assert [k.kid for k in cache.get(jwks_server.url, first.kid)] == [first.kid]
    jwks_server.serve(second)
    now[0] += 10
    assert [k.kid for k in cache.get(jwks_server.url, second.kid)] == [first.kid]  # no refetch yet
    assert jwks_server.hits == 1
    now[0] += 25
    assert [k.kid for k in cache.get(jwks_server.url, second.kid)] == [second.kid]
    assert jwks_server.hits == 2
    now[0] += 200
    cache.get(jwks_server.url, second.kid)  # known kid, fresh set: from the cache
    assert jwks_server.hits == 2
    now[0] += 301
    jwks_server.serve(second, status=503)
    with pytest.raises(RemoteKeyError):
        cache.get(jwks_server.url, second.kid)  # stale after 5 minutes, and the refetch fails
    with pytest.raises(RemoteKeyError):
        cache.get(jwks_server.url, second.kid)  # failed moments ago: no new request
    assert jwks_server.hits == 3


def test_rfc7009_revoke_leaves_no_live_credential(app, client):
    """``service revoke``: no secret, no key, no token; the account stays."""
    client_id, secret = create_service(app)
    token = cc_token(client, client_id, secret).json["access_token"]

    view = run(app, "services.revoke", {"name": SERVICE})

    assert view["has_credential"] is False and view["has_secret"] is False
    assert_invalid_client(cc_token(client, client_id, secret))
    assert introspect_refused(client, token)
    key = ec_key()
    run(app, "services.set-key", {"name": SERVICE, "jwks": key.as_dict(private=False)})
    run(app, "services.revoke", {"name": SERVICE})
    assert_invalid_client(cc_token_with_key(client, client_id, key))
    with app.app_context():
        assert db.session.scalar(select(Account.kind).where(Account.username == SERVICE)) == "system"


def test_rfc6749_4_4_2_disable_and_enable(app, client):
    """A disabled system account does not authenticate (``invalid_client``) and its tokens are
    revoked; enabled again, its credential works and earlier tokens stay revoked."""
    client_id, secret = create_service(app)
    token = cc_token(client, client_id, secret).json["access_token"]

    assert run(app, "services.disable", {"name": SERVICE})["disabled"] is True
    assert_invalid_client(cc_token(client, client_id, secret))
    assert introspect_refused(client, token)

    assert run(app, "services.enable", {"name": SERVICE})["disabled"] is False
    assert cc_token(client, client_id, secret).status_code == 200
    assert introspect(client, client_id, secret, token) == {"active": False}


def test_operations_refuse_a_persons_account_and_unknown_names(app):
    """Only system accounts are managed here: a person's account is "not found" (404)."""
    make_user(app, "dave")
    for name in ("dave", "ghost"):
        with pytest.raises(Problem) as refused:
            run(app, "services.rotate", {"name": name})
        assert refused.value.status == 404


def test_list_and_show_never_hold_a_secret(app, client):
    _, secret = create_service(app)
    token = admin_token(app)
    listed = client.get("/api/admin/services", headers=bearer(token))
    shown = client.get(f"/api/admin/services/{SERVICE}", headers=bearer(token))
    assert listed.status_code == 200 and shown.status_code == 200
    assert [s["name"] for s in listed.json] == [SERVICE]
    assert shown.json["has_secret"] is True and shown.json["has_database_credentials"] is False
    assert secret not in listed.text + shown.text


# ---- delegated issuance: a role named like the system account ----

@pytest.fixture
def people(app):
    """alice holds the role named like the system account; bob another role; carol a role
    named like dave, a person. Each has a personal token for the issuer."""
    for name in ("alice", "bob", "carol", "dave"):
        make_user(app, name)
    for role in (SERVICE, "other", "dave"):
        define_role(app, role, {"audience": APP, "actions": ["read"], "resources": ["*"]})
    grant(app, "alice", SERVICE)
    grant(app, "bob", "other")
    grant(app, "carol", "dave")
    return {name: personal_token(app, name)[1] for name in ("alice", "bob", "carol")}


def test_delegated_credential_issuance_by_the_same_named_role(app, client, people):
    """DESIGN: "Admins, and users holding a role named after the system account, may issue or
    revoke its credential"."""
    client_id, old_secret = create_service(app)
    headers = bearer(people["alice"])

    rotated = client.post(CREDENTIAL_PATH, headers=headers)
    assert rotated.status_code == 201, rotated.json
    assert rotated.headers["Cache-Control"] == "no-store"
    new_secret = rotated.json["client_secret"]
    assert_invalid_client(cc_token(client, client_id, old_secret))
    assert cc_token(client, client_id, new_secret).status_code == 200

    key = ec_key()
    keyed = client.put(f"/api/admin/services/{SERVICE}/key", headers=headers,
                       json={"jwks": {"keys": [key.as_dict(private=False)]}})
    assert keyed.status_code == 200, keyed.json
    assert cc_token_with_key(client, client_id, key).status_code == 200
    assert_invalid_client(cc_token(client, client_id, new_secret))

    revoked = client.delete(CREDENTIAL_PATH, headers=headers)
    assert revoked.status_code == 200 and revoked.json["has_credential"] is False
    assert_invalid_client(cc_token_with_key(client, client_id, key))
    assert new_secret not in all_audit_text(app)


def test_delegated_credential_issuance_refused_without_the_role(app, client, people):
    """Another role gives nothing: 403 ``forbidden``, audited, nothing changed."""
    client_id, secret = create_service(app)
    before = last_audit_id(app)
    for method, path, body in (("post", CREDENTIAL_PATH, None), ("delete", CREDENTIAL_PATH, None),
                               ("put", f"/api/admin/services/{SERVICE}/key", {"jwks_uri": "https://k.example/j"})):
        response = getattr(client, method)(path, headers=bearer(people["bob"]), json=body)
        assert response.status_code == 403, (path, response.json)
        assert response.json["error"] == "insufficient_scope"
    denied = [e for e in audit_since(app, before) if e["event"] == "admin:api:denied"]
    assert len(denied) == 3 and {e["account"] for e in denied} == {"bob"}
    assert {e["detail"]["operation"] for e in denied} == {"services.rotate", "services.revoke", "services.set-key"}
    assert cc_token(client, client_id, secret).status_code == 200


def test_delegation_is_for_system_accounts_only_and_leaks_no_names(app, client, people):
    """carol holds a role named like dave, a *person*: that gives her nothing, and she gets the
    same 403 for a name that does not exist (no oracle of which names exist). An admin gets
    404 for a person's account."""
    create_service(app)
    for name in ("dave", "ghost"):
        response = client.post(f"/api/admin/services/{name}/credential", headers=bearer(people["carol"]))
        assert response.status_code == 403, response.json
        assert response.json["error"] == "insufficient_scope"
    response = client.post("/api/admin/services/dave/credential", headers=bearer(admin_token(app)))
    assert response.status_code == 404
    assert response.json["error"] == "not_found"


def test_delegation_covers_the_credential_only(app, client, people):
    """The role named like the system account lets alice manage its credential, not disable it,
    set its database credentials or manage another system account's credential."""
    create_service(app)
    create_service(app, "other-job")
    headers = bearer(people["alice"])
    assert client.post(f"/api/admin/services/{SERVICE}/disable", headers=headers).status_code == 403
    assert client.put(f"/api/admin/services/{SERVICE}/database-credentials", headers=headers,
                      json={"dsn": DSN, "password": DB_PASSWORD}).status_code == 403
    assert client.post("/api/admin/services/other-job/credential", headers=headers).status_code == 403


def test_delegation_ends_when_the_role_is_revoked(app, client, people):
    """Roles are read live: a personal token whose owner lost the role stops using it at once."""
    create_service(app)
    assert client.post(CREDENTIAL_PATH, headers=bearer(people["alice"])).status_code == 201
    revoke(app, "alice", SERVICE)
    response = client.post(CREDENTIAL_PATH, headers=bearer(people["alice"]))
    assert response.status_code == 403
    assert response.json["error"] == "insufficient_scope"


def test_rfc9068_4_a_token_for_another_audience_is_invalid_at_the_admin_api(app, client, people):
    """RFC 9068 §4: the resource server "MUST validate that the aud claim contains a resource
    indicator value corresponding to an identifier the resource server expects for itself"."""
    create_service(app)
    _, app_token = personal_token(app, "alice", audience=APP)
    response = client.post(CREDENTIAL_PATH, headers=bearer(app_token))
    assert response.status_code == 401
    assert response.json["error"] == "invalid_token"


# ---- database credentials ----

@pytest.fixture
def stored(app, people):
    """The system account with database credentials set by the operator."""
    client_id, secret = create_service(app)
    run(app, "services.set-database-credentials", {"name": SERVICE, "dsn": DSN, "password": DB_PASSWORD})
    return client_id, secret


def test_database_credentials_are_sealed_at_rest(app, stored):
    """DESIGN: "the PostgreSQL credentials stored for it, encrypted at rest"."""
    with app.app_context():
        row = db.session.scalar(select(DatabaseCredential))
        for sealed in (row.dsn_sealed, row.password_sealed):
            assert DB_PASSWORD.encode() not in sealed and b"db.internal" not in sealed
    assert run(app, "services.show", {"name": SERVICE})["has_database_credentials"] is True


def test_database_credentials_fetched_by_the_system_account_itself(app, client, stored, logged):
    """The system account's own client-credentials token (audience: the issuer)."""
    client_id, secret = stored
    token = cc_token(client, client_id, secret).json["access_token"]
    before = last_audit_id(app)
    response = client.get(FETCH_PATH, headers=bearer(token))
    assert response.status_code == 200, response.json
    assert response.headers["Cache-Control"] == "no-store"
    assert response.json["dsn"] == DSN and response.json["password"] == DB_PASSWORD
    assert response.json["user"] == "backup" and response.json["dbname"] == "backups"
    [event] = audit_since(app, before)
    assert (event["event"], event["outcome"], event["account"]) == \
        ("service:database-credentials:fetched", "success", SERVICE)
    assert event["detail"] == {"service": SERVICE, "via": "access_token"}
    assert_never_leaked(app, logged)


def test_database_credentials_fetched_by_a_user_with_the_same_named_role(app, client, stored, people, logged):
    """A person holding the role named like the system account, with a personal token."""
    response = client.get(FETCH_PATH, headers=bearer(people["alice"]))
    assert response.status_code == 200, response.json
    assert response.json["password"] == DB_PASSWORD
    assert_never_leaked(app, logged)


def test_database_credentials_refused_to_everyone_else(app, client, stored, people, logged):
    """bob (another role), an admin (admins set them but do not read them), another system
    account and a name that does not exist: 403 ``forbidden`` each, audited as refused."""
    other_id, other_secret = create_service(app, "other-job")
    other_token = cc_token(client, other_id, other_secret).json["access_token"]
    before = last_audit_id(app)
    for token, path in ((people["bob"], FETCH_PATH), (admin_token(app), FETCH_PATH), (other_token, FETCH_PATH),
                        (people["bob"], "/api/service-accounts/ghost/database-credentials"),
                        (people["alice"], "/api/service-accounts/ghost/database-credentials")):
        response = client.get(path, headers=bearer(token))
        assert response.status_code == 403, (path, response.json)
        assert response.json["error"] == "forbidden"
    refused = [e for e in audit_since(app, before) if e["event"] == "service:database-credentials:fetched"]
    assert [e["outcome"] for e in refused] == ["failure"] * 5
    assert [e["account"] for e in refused] == ["bob", "ops", "other-job", "bob", "alice"]
    assert_never_leaked(app, logged)


def test_database_credentials_refused_at_once_when_the_role_is_revoked(app, client, stored, people):
    """A personal token's grants are its owner's *current* ones."""
    assert client.get(FETCH_PATH, headers=bearer(people["alice"])).status_code == 200
    revoke(app, "alice", SERVICE)
    response = client.get(FETCH_PATH, headers=bearer(people["alice"]))
    assert response.status_code == 403
    assert response.json["error"] == "forbidden"


def test_rfc6750_3_1_database_credentials_need_a_valid_token(app, client, stored):
    """RFC 6750 §3.1: no token -> 401 and a bare challenge; a bad one -> ``invalid_token``;
    both audited."""
    before = last_audit_id(app)
    bare = client.get(FETCH_PATH)
    assert bare.status_code == 401
    assert bare.headers["WWW-Authenticate"] == 'Bearer realm="service-accounts"'
    bad = client.get(FETCH_PATH, headers=bearer("oidcpat_not-a-token"))
    assert bad.status_code == 401
    assert bad.json["error"] == "invalid_token"
    reasons = [e["reason"] for e in audit_since(app, before) if e["event"] == "service:database-credentials:fetched"]
    assert reasons == ["no_token", "invalid_token"]


def test_rfc9068_4_system_account_token_for_another_audience_is_refused(app_factory):
    """RFC 9068 §4: this API is the issuer's; a token whose audience is another resource
    (``OIDC_DEFAULT_AUDIENCE``) is ``invalid_token`` here."""
    app = app_factory(default_audience="https://api.example")
    http = app.test_client()
    client_id, secret = create_service(app)
    run(app, "services.set-database-credentials", {"name": SERVICE, "dsn": DSN, "password": DB_PASSWORD})
    token = cc_token(http, client_id, secret).json["access_token"]
    response = http.get(FETCH_PATH, headers=bearer(token))
    assert response.status_code == 401
    assert response.json["error"] == "invalid_token"


def test_database_credentials_not_stored_is_404_for_an_allowed_caller(app, client, people):
    create_service(app)
    response = client.get(FETCH_PATH, headers=bearer(people["alice"]))
    assert response.status_code == 404
    assert response.json["error"] == "not_found"


def test_database_credentials_moved_to_another_row_do_not_open(app, client, stored, people):
    """The ciphertext is bound to its account: copied onto another system account's row it does
    not decrypt, and the caller gets a clear error (409), not a 500."""
    other_id, other_secret = create_service(app, "other-job")
    run(app, "services.set-database-credentials", {"name": "other-job", "dsn": "host=other dbname=o",
                                                   "password": "other-password"})
    with app.app_context():
        rows = {r.account_id: r for r in db.session.scalars(select(DatabaseCredential))}
        mine = db.session.scalar(select(Account.id).where(Account.username == SERVICE))
        other = rows[db.session.scalar(select(Account.id).where(Account.username == "other-job"))]
        other.dsn_sealed, other.password_sealed = rows[mine].dsn_sealed, rows[mine].password_sealed
        db.session.commit()
    token = cc_token(client, other_id, other_secret).json["access_token"]
    before = last_audit_id(app)
    response = client.get("/api/service-accounts/other-job/database-credentials", headers=bearer(token))
    assert response.status_code == 409, response.json
    assert response.json["error"] == "conflict"
    assert DB_PASSWORD not in response.text
    [event] = audit_since(app, before)
    assert (event["outcome"], event["reason"]) == ("failure", "unreadable")


def test_database_credentials_refuse_a_dsn_holding_a_password(app, client, people):
    """The password goes on standard input, never in the DSN (which ends up in shell histories
    and logs); refused with 400 naming the problem, without echoing the DSN."""
    create_service(app)
    token = admin_token(app)
    for dsn in ("postgresql://backup:hunter2@db/backups", "host=db password=hunter2",
                "postgres://db/backups?password=hunter2", "mysql://db/x"):
        response = client.put(f"/api/admin/services/{SERVICE}/database-credentials", headers=bearer(token),
                              json={"dsn": dsn, "password": DB_PASSWORD})
        assert response.status_code == 400, (dsn, response.json)
        assert response.json["error"] == "invalid_request"
        assert "hunter2" not in response.text
    ok = client.put(f"/api/admin/services/{SERVICE}/database-credentials", headers=bearer(token),
                    json={"dsn": "host=db.internal dbname=backups user='backup'", "password": DB_PASSWORD})
    assert ok.status_code == 200, ok.json
    assert ok.json["user"] == "backup"
    assert DB_PASSWORD not in all_audit_text(app)


def assert_never_leaked(app, logged: list[str]) -> None:
    """No audit row and no log line holds the database password."""
    assert any("database-credentials" in line for line in logged)  # the audit lines were captured
    assert DB_PASSWORD not in "\n".join(logged)
    assert DB_PASSWORD not in all_audit_text(app)


# ---- a system account's client is changed through the service operations only ----

def test_clients_write_cannot_change_a_system_accounts_client(app, client):
    """``admin:clients:write`` (here through ``admin:*``) does not reach a system account's
    client: updating it, rotating its secret or deleting it through the clients operations is
    403 ``forbidden`` and changes nothing, on the command line too; ``services.update`` does it."""
    client_id, secret = create_service(app)
    token = admin_token(app)
    before = run(app, "services.show", {"name": SERVICE})
    for method, path, body in (("PATCH", f"/api/admin/clients/{client_id}", {"audience": "https://evil.example"}),
                               ("PATCH", f"/api/admin/clients/{client_id}", {"scope": "openid admin"}),
                               ("POST", f"/api/admin/clients/{client_id}/secret", None),
                               ("DELETE", f"/api/admin/clients/{client_id}", None)):
        response = client.open(path, method=method, headers=bearer(token), json=body)
        assert (response.status_code, response.json["error"]) == (403, "forbidden"), (method, path, response.json)
        assert "service operations" in response.json["error_description"]
    with pytest.raises(Problem, match="belongs to a system account"):
        run(app, "clients.update", {"client_id": client_id, "resources": ["https://evil.example"]})
    assert run(app, "services.show", {"name": SERVICE}) == before
    assert cc_token(client, client_id, secret).status_code == 200
    changed = client.patch(f"/api/admin/services/{SERVICE}", headers=bearer(token),
                           json={"audience": "https://backup.example", "resources": ["https://archive.example"]})
    assert changed.status_code == 200, changed.json
    assert (changed.json["audience"], changed.json["resources"]) == ("https://backup.example",
                                                                     ["https://archive.example"])
    assert cc_token(client, client_id, secret).json["access_token"]


def test_service_update_is_services_write_not_clients_write(app, client):
    """The service operations keep their own permission: ``admin:clients:write`` alone cannot
    re-point a system account's audience (RFC 6750 §3.1 insufficient_scope)."""
    create_service(app)
    make_user(app, "carol")
    define_role(app, "client-admin", {"audience": ISSUER, "actions": ["admin:clients:*"], "resources": ["*"]})
    grant(app, "carol", "client-admin")
    _, token = personal_token(app, "carol")
    response = client.patch(f"/api/admin/services/{SERVICE}", headers=bearer(token),
                            json={"audience": "https://evil.example"})
    assert (response.status_code, response.json["error"]) == (403, "insufficient_scope")
    assert response.json["scope"] == "admin:services:write"
