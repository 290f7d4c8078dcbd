"""One successful call per admin operation, for test_admin_api.py: the parameters to send
and a check that the change was really made. Names refer to the ``world`` fixture there: ops
(admin), alice (no roles), bob (holds viewer, has a personal token for APP), the roles viewer
and spare (granted to no one), the system accounts nightly (with a secret) and paused
(disabled)."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select

from oidc_provider.access import personal_tokens
from oidc_provider.access import roles as role_service
from oidc_provider.admin import accounts as admin_accounts
from oidc_provider.admin import clients as admin_clients
from oidc_provider.extensions import db
from oidc_provider.models import Account, Client, PersonalToken, Role

from ..helpers import PASSWORD
from ..spec._clients import public_jwks, rsa_key
from ._admin import APP


@dataclass
class Case:
    path: dict = field(default_factory=dict)
    query: dict | None = None
    body: dict | None = None
    check: object = None  # check(app, answer): the change is really made


def _account(app, username):
    with app.app_context():
        account = db.session.scalar(select(Account).where(Account.username == username))
        view = account and {"name": account.name, "disabled": account.disabled, "hash": account.password_hash}
        db.session.remove()
        return view


def _password_is(app, username, password):
    return app.extensions["oidc_passwords"].verify(_account(app, username)["hash"], password)


def _roles_of(app, username):
    with app.app_context():
        names = [r.name for r in role_service.roles_of(admin_accounts.find_account(username).id)]
        db.session.remove()
        return names


def _role(app, name):
    with app.app_context():
        role = db.session.scalar(select(Role).where(Role.name == name))
        out = role and {"statements": role.statements, "description": role.description}
        db.session.remove()
        return out


def _token_state(app, public_id):
    with app.app_context():
        row = db.session.scalar(select(PersonalToken).where(PersonalToken.public_id == public_id))
        out = row and {"revoked": row.revoked_at is not None, "roles": personal_tokens.role_names(row),
                       "audience": row.audience}
        db.session.remove()
        return out


def _authenticates(app, client_id, secret) -> bool:
    """RFC 6749 §4.4: the secret obtains a client_credentials token."""
    issued = app.test_client().post("/token", data={"grant_type": "client_credentials"}, auth=(client_id, secret))
    return issued.status_code == 200


def _client_authenticates(app, client_id, secret) -> bool:
    """RFC 7662 §2.1: introspection needs client authentication; a good secret gets 200."""
    answer = app.test_client().post("/introspect", data={"token": "x"}, auth=(client_id, secret))
    return answer.status_code == 200


def _client(app, client_id):
    with app.app_context():
        found = db.session.scalar(select(Client).where(Client.client_id == client_id))
        view = found and admin_clients.client_view(found)
        db.session.remove()
        return view


KEY = rsa_key()
DEPLOYERS = [{"audience": APP, "actions": ["deploy"], "resources": ["service:*"]}]
# One successful call per operation. An operation added to the registry without a row here
# fails test_admin_api.py: no operation ships untested.
CASES = {
    "accounts.list": lambda w: Case(query={"kind": "human"}, check=lambda app, a: [x["username"] for x in a]
                                    == ["alice", "bob", "ops"]),
    "accounts.show": lambda w: Case(path={"username": "bob"}, check=lambda app, a: a["roles"] == ["viewer"]),
    "accounts.create": lambda w: Case(
        body={"username": "carol", "email": "carol@example.com", "email_verified": True, "name": "Carol",
              "password": PASSWORD},
        check=lambda app, a: a["username"] == "carol" and "password" not in a
        and _password_is(app, "carol", PASSWORD)),
    "accounts.update": lambda w: Case(path={"username": "alice"}, body={"name": "Alice A.", "disabled": True},
                                      check=lambda app, a: _account(app, "alice")["disabled"] is True
                                      and _account(app, "alice")["name"] == "Alice A."),
    "accounts.set-password": lambda w: Case(path={"username": "alice"}, body={"password": "another long phrase 42"},
                                            check=lambda app, a: _password_is(app, "alice", "another long phrase 42")
                                            and "another" not in str(a)),
    "accounts.delete": lambda w: Case(path={"username": "alice"}, check=lambda app, a: _account(app, "alice") is None),
    "accounts.roles": lambda w: Case(path={"username": "bob"},
                                     check=lambda app, a: [r["name"] for r in a] == ["viewer"]),
    "accounts.grant": lambda w: Case(path={"username": "alice", "role": "spare"},
                                     check=lambda app, a: a["changed"] and _roles_of(app, "alice") == ["spare"]),
    "accounts.revoke": lambda w: Case(path={"username": "bob", "role": "viewer"},
                                      check=lambda app, a: _roles_of(app, "bob") == []),
    "roles.list": lambda w: Case(check=lambda app, a: [r["name"] for r in a] == ["admin", "spare", "viewer"]),
    "roles.show": lambda w: Case(path={"name": "viewer"}, check=lambda app, a: a["granted_to"] == ["bob"]),
    "roles.define": lambda w: Case(path={"name": "deployers"}, body={"statements": DEPLOYERS, "description": "CI"},
                                   check=lambda app, a: a["created"] and _role(app, "deployers")
                                   == {"statements": DEPLOYERS, "description": "CI"}),
    "roles.remove": lambda w: Case(path={"name": "spare"}, check=lambda app, a: _role(app, "spare") is None),
    "tokens.create": lambda w: Case(
        body={"user": "bob", "audience": APP, "roles": ["viewer"], "expires": "12h", "name": "ci"},
        check=lambda app, a: a["token"].startswith("oidcpat_") and _token_state(app, a["id"])
        == {"revoked": False, "roles": ["viewer"], "audience": APP}),
    "tokens.list": lambda w: Case(query={"user": "bob"}, check=lambda app, a: [t["id"] for t in a] == [w["bob_pat"]]
                                  and "token" not in a[0]),
    "tokens.revoke": lambda w: Case(path={"id": w["bob_pat"]},
                                    check=lambda app, a: _token_state(app, w["bob_pat"])["revoked"]),
    "audit.list": lambda w: Case(query={"user": "bob", "event": "admin:role:*", "since": "1h", "limit": 5},
                                 check=lambda app, a: [e["event"] for e in a] == ["admin:role:granted"]),
    "services.list": lambda w: Case(check=lambda app, a: [(s["name"], s["disabled"]) for s in a]
                                    == [("nightly", False), ("paused", True)] and "client_secret" not in a[0]),
    "services.show": lambda w: Case(path={"name": "nightly"}, check=lambda app, a: a["client_id"] == w["nightly"][0]
                                    and a["has_secret"] and "client_secret" not in a),
    "services.create": lambda w: Case(body={"name": "backup", "scope": "reports"},
                                      check=lambda app, a: _authenticates(app, a["client_id"], a["client_secret"])),
    "services.update": lambda w: Case(
        path={"name": "nightly"}, body={"audience": "https://reports.example", "resources": ["https://api.example"],
                                        "scope": "reports"},
        check=lambda app, a: (_client(app, w["nightly"][0])["audience"], _client(app, w["nightly"][0])["resources"],
                              _client(app, w["nightly"][0])["scope"])
        == ("https://reports.example", ["https://api.example"], "reports") and _authenticates(app, *w["nightly"])),
    "services.rotate": lambda w: Case(path={"name": "nightly"}, check=lambda app, a: _authenticates(
        app, a["client_id"], a["client_secret"]) and not _authenticates(app, *w["nightly"])),
    "services.set-key": lambda w: Case(path={"name": "nightly"}, body={"jwks": public_jwks(KEY)},
                                       check=lambda app, a: a["key_ids"] == [KEY.kid] and not a["has_secret"]
                                       and not _authenticates(app, *w["nightly"])),
    "services.revoke": lambda w: Case(path={"name": "nightly"}, check=lambda app, a: not a["has_credential"]
                                      and not _authenticates(app, *w["nightly"])),
    "services.disable": lambda w: Case(path={"name": "nightly"}, check=lambda app, a: a["disabled"] and a["changed"]
                                       and not _authenticates(app, *w["nightly"])),
    "services.enable": lambda w: Case(path={"name": "paused"}, check=lambda app, a: not a["disabled"] and a["changed"]),
    "services.set-database-credentials": lambda w: Case(
        path={"name": "nightly"}, body={"dsn": "postgresql://nightly@db.example/reports", "password": "pg-secret-42"},
        check=lambda app, a: (a["user"], a["dbname"]) == ("nightly", "reports") and "pg-secret" not in str(a)),
    "clients.list": lambda w: Case(check=lambda app, a: [c["name"] for c in a] == ["Wiki"]
                                   and "client_secret" not in a[0]),
    "clients.show": lambda w: Case(path={"client_id": w["wiki"][0]}, check=lambda app, a: a["name"] == "Wiki"),
    "clients.create": lambda w: Case(
        body={"name": "Notes", "redirect_uris": ["https://notes.example/cb"], "grants": ["refresh_token"],
              "audience": "https://notes.example", "resources": ["https://api.notes.example"], "require_grant": True},
        check=lambda app, a: _client_authenticates(app, a["client_id"], a["client_secret"])
        and _client(app, a["client_id"])["resources"] == ["https://api.notes.example"]),
    "clients.update": lambda w: Case(
        path={"client_id": w["wiki"][0]}, body={"name": "Wiki 2", "min_acr": "mfa", "scope": "openid roles"},
        check=lambda app, a: (_client(app, w["wiki"][0])["name"], _client(app, w["wiki"][0])["min_acr"])
        == ("Wiki 2", "mfa")),
    "clients.rotate-secret": lambda w: Case(
        path={"client_id": w["wiki"][0]}, check=lambda app, a: _client_authenticates(
            app, w["wiki"][0], a["client_secret"]) and not _client_authenticates(app, *w["wiki"])),
    "clients.delete": lambda w: Case(path={"client_id": w["wiki"][0]}, check=lambda app, a: _client(
        app, w["wiki"][0]) is None),
}
