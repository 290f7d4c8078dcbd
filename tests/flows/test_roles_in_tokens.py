"""Tokens carry the grants (issue 5): an access token for an audience holds a Keycloak-shaped
``resource_access`` claim with only that audience's slice of the subject's roles; the
``roles`` scope puts the same slice in the ID token and userinfo; a client may require a grant;
introspection (RFC 7662) reports the slice, for personal access tokens too."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from oidc_provider.access import personal_tokens, roles
from oidc_provider.access.evaluator import allows
from oidc_provider.admin import accounts as admin_accounts
from oidc_provider.admin import clients as admin_clients
from oidc_provider.admin import services as admin_services
from oidc_provider.cli import main
from oidc_provider.extensions import db

from ..conftest import DATABASE_URL, ISSUER, settings_for
from ..helpers import Browser, make_client, make_user
from ..spec._clients import claims_of, counts, refresh
from ..spec._support import verified_claims

GRAFANA = "https://grafana.example.com"
WIKI = "https://wiki.example.com"
BILLING = "https://billing.example.com"
BACKUP = "https://backup.example.com"
SCOPE = "openid profile email offline_access roles"

# Two roles, each with statements for both audiences, and one for a third audience.
VIEWER = [{"audience": GRAFANA, "actions": ["dashboards:read"], "resources": ["team:*"]},
          {"audience": WIKI, "actions": ["pages:read"], "resources": ["*"]}]
EDITOR = [{"audience": GRAFANA, "actions": ["dashboards:write"], "resources": ["team:ops"]},
          {"audience": WIKI, "actions": ["pages:write", "pages:delete"], "resources": ["space:ops*"]}]
ACCOUNTANT = [{"audience": BILLING, "actions": ["invoices:*"], "resources": ["*"]}]

GRAFANA_SLICE = {"roles": ["editor", "viewer"], "statements": [
    {"actions": ["dashboards:write"], "resources": ["team:ops"]},
    {"actions": ["dashboards:read"], "resources": ["team:*"]}]}
WIKI_SLICE = {"roles": ["editor", "viewer"], "statements": [
    {"actions": ["pages:write", "pages:delete"], "resources": ["space:ops*"]},
    {"actions": ["pages:read"], "resources": ["*"]}]}


def _define_roles(app, holder="alice", held=("viewer", "editor", "accountant")):
    with app.app_context():
        for name, statements in (("viewer", VIEWER), ("editor", EDITOR), ("accountant", ACCOUNTANT)):
            roles.define(name, roles.parse_statements(statements))
        account = admin_accounts.find_account(holder)
        for name in held:
            roles.grant(account, name)
        db.session.commit()


def _change_grant(app, name, *, give: bool, username="alice"):
    with app.app_context():
        account = admin_accounts.find_account(username)
        (roles.grant if give else roles.revoke)(account, name)
        db.session.commit()


@pytest.fixture
def rp(app):
    """alice holding viewer, editor and accountant; a client for Grafana (its default
    audience) that may also ask for the wiki."""
    make_user(app)
    _define_roles(app)
    return make_client(app, grants=["refresh_token"], scope=SCOPE, audience=GRAFANA, resources=[WIKI])


def _tokens(browser, rp, *, scope=SCOPE, **extra) -> dict:
    result = browser.sign_in_and_authorize(rp[0], scope=scope, **extra)
    response = browser.redeem(*rp, result["code"])
    assert response.status_code == 200, response.json
    return response.json


def _userinfo(http, access_token) -> dict:
    response = http.get("/userinfo", headers={"Authorization": f"Bearer {access_token}"})
    assert response.status_code == 200, response.json
    return response.json


def _introspect(http, client, token) -> dict:
    response = http.post("/introspect", data={"token": token}, auth=client)
    assert response.status_code == 200, response.json
    return response.json


def test_each_audience_gets_only_its_own_slice(app, browser, rp):
    grafana = claims_of(_tokens(browser, rp)["access_token"])
    assert (grafana["aud"], grafana["resource_access"]) == (GRAFANA, {GRAFANA: GRAFANA_SLICE})
    wiki = claims_of(_tokens(browser, rp, resource=WIKI)["access_token"])
    assert (wiki["aud"], wiki["resource_access"]) == (WIKI, {WIKI: WIKI_SLICE})


def test_the_slice_is_what_the_published_evaluator_reads(app, browser, rp):
    """A relying party evaluates its own slice with access.evaluator.allows."""
    statements = claims_of(_tokens(browser, rp)["access_token"])["resource_access"][GRAFANA]["statements"]
    assert allows(statements, "dashboards:read", "team:sales", audience=GRAFANA)
    assert allows(statements, "dashboards:write", "team:ops", audience=GRAFANA)
    assert not allows(statements, "dashboards:write", "team:sales", audience=GRAFANA)
    assert not allows(statements, "pages:read", "space:ops", audience=GRAFANA)


def test_roles_scope_puts_the_same_slice_in_the_id_token_and_userinfo(app, browser, rp):
    body = _tokens(browser, rp, scope="openid roles", resource=WIKI)
    id_token = verified_claims(browser.http, body["id_token"])
    assert (id_token["roles"], id_token["resource_access"]) == (["editor", "viewer"], {WIKI: WIKI_SLICE})
    assert id_token["resource_access"] == claims_of(body["access_token"])["resource_access"]
    info = _userinfo(browser.http, body["access_token"])
    assert (info["roles"], info["resource_access"]) == (["editor", "viewer"], {WIKI: WIKI_SLICE})


def test_refreshed_id_token_has_the_slice_of_the_refreshed_access_token(app, browser, rp):
    body = _tokens(browser, rp, scope="openid roles offline_access", resource=[GRAFANA, WIKI])
    again = refresh(browser.http, *rp, body["refresh_token"], resource=WIKI).json
    assert verified_claims(browser.http, again["id_token"])["resource_access"] == {WIKI: WIKI_SLICE}
    assert claims_of(again["access_token"])["resource_access"] == {WIKI: WIKI_SLICE}


def test_without_the_roles_scope_only_the_access_token_has_the_slice(app, browser, rp):
    body = _tokens(browser, rp, scope="openid profile")
    assert claims_of(body["access_token"])["resource_access"] == {GRAFANA: GRAFANA_SLICE}
    assert not {"roles", "resource_access"} & set(verified_claims(browser.http, body["id_token"]))
    assert not {"roles", "resource_access"} & set(_userinfo(browser.http, body["access_token"]))


def test_a_client_not_registered_for_the_roles_scope_does_not_get_it(app, browser):
    make_user(app)
    _define_roles(app)
    rp = make_client(app, audience=GRAFANA)  # default scopes: no roles
    body = _tokens(browser, rp, scope="openid roles")
    assert body["scope"].split() == ["openid"]
    assert "roles" not in verified_claims(browser.http, body["id_token"])


def test_no_slice_means_no_claims(app, browser, rp):
    """A person whose roles say nothing about the audience: no ``resource_access`` anywhere,
    and no ``roles`` even with the scope."""
    make_user(app, "bob")
    body = _tokens(browser, rp, username="bob")
    assert "resource_access" not in claims_of(body["access_token"])
    assert not {"roles", "resource_access"} & set(verified_claims(browser.http, body["id_token"]))
    assert not {"roles", "resource_access"} & set(_userinfo(browser.http, body["access_token"]))


def test_require_grant_refuses_a_subject_without_one(app, browser):
    """RFC 8707 §2 ``invalid_target``: a client registered --require-grant gets no token for a
    person who holds no grant on the audience; nothing is issued and the code is used up."""
    make_user(app)
    make_user(app, "bob")
    _define_roles(app)
    rp = make_client(app, scope=SCOPE, audience=GRAFANA, resources=[BILLING], require_grant=True)
    code = browser.sign_in_and_authorize(rp[0], username="bob", scope=SCOPE)["code"]
    before = counts(app)
    response = browser.redeem(*rp, code)
    assert (response.status_code, response.json) == (400, {
        "error": "invalid_target", "error_description": "the subject holds no grant on this resource"})
    assert counts(app) == before
    again = browser.redeem(*rp, code)
    assert (again.status_code, again.json["error"]) == (400, "invalid_grant")
    # alice holds a grant there: she gets her token.
    alice = make_client(app, scope=SCOPE, audience=GRAFANA, require_grant=True)
    assert claims_of(_tokens(Browser(app), alice)["access_token"])["resource_access"] == {GRAFANA: GRAFANA_SLICE}


def test_require_grant_checked_at_refresh_and_the_refresh_token_survives(app, browser):
    make_user(app)
    _define_roles(app, held=("viewer",))
    rp = make_client(app, grants=["refresh_token"], scope=SCOPE, audience=GRAFANA, require_grant=True)
    body = _tokens(browser, rp)
    _change_grant(app, "viewer", give=False)
    refused = refresh(browser.http, *rp, body["refresh_token"])
    assert (refused.status_code, refused.json["error"]) == (400, "invalid_target")
    _change_grant(app, "viewer", give=True)
    again = refresh(browser.http, *rp, body["refresh_token"])
    assert again.status_code == 200, again.json
    assert claims_of(again.json["access_token"])["resource_access"][GRAFANA]["roles"] == ["viewer"]


def test_a_revoked_grant_is_gone_from_the_next_token(app, browser, rp):
    body = _tokens(browser, rp)
    _change_grant(app, "editor", give=False)
    again = refresh(browser.http, *rp, body["refresh_token"]).json
    assert claims_of(again["access_token"])["resource_access"][GRAFANA]["roles"] == ["viewer"]
    _change_grant(app, "viewer", give=False)
    last = refresh(browser.http, *rp, again["refresh_token"]).json
    assert "resource_access" not in claims_of(last["access_token"])
    # Introspection reads the roles as they are now, even for the older token.
    old = _introspect(browser.http, rp, body["access_token"])
    assert old["active"] is True and "resource_access" not in old


def test_introspection_reports_aud_and_the_slice(app, browser, rp):
    """RFC 7662 §2.2: ``aud`` and, as an extension, the token's ``resource_access``."""
    body = _tokens(browser, rp, resource=WIKI)
    info = _introspect(browser.http, rp, body["access_token"])
    assert (info["aud"], info["resource_access"]) == (WIKI, {WIKI: WIKI_SLICE})


def test_client_credentials_token_carries_the_system_accounts_slice(app, client):
    with app.app_context():
        service, secret = admin_services.create_service(name="backup-job")
        admin_clients.set_client_targets(service, audience=BACKUP)
        roles.define("backup-writer", roles.parse_statements(
            [{"audience": BACKUP, "actions": ["snapshots:create"], "resources": ["volume:*"]}]))
        roles.grant(service.account, "backup-writer")
        db.session.commit()
        creds = (service.client_id, secret)
    response = client.post("/token", data={"grant_type": "client_credentials"}, auth=creds)
    assert response.status_code == 200, response.json
    claims = claims_of(response.json["access_token"])
    expected = {BACKUP: {"roles": ["backup-writer"],
                         "statements": [{"actions": ["snapshots:create"], "resources": ["volume:*"]}]}}
    assert (claims["sub"], claims["aud"], claims["resource_access"]) == (creds[0], BACKUP, expected)
    assert _introspect(client, creds, response.json["access_token"])["resource_access"] == expected


def test_client_credentials_require_grant_without_one_is_invalid_target(app, client):
    with app.app_context():
        service, secret = admin_services.create_service(name="backup-job")
        admin_clients.set_client_targets(service, audience=BACKUP, require_grant=True)
        db.session.commit()
        creds = (service.client_id, secret)
    before = counts(app)
    response = client.post("/token", data={"grant_type": "client_credentials"}, auth=creds)
    assert (response.status_code, response.json["error"]) == (400, "invalid_target")
    assert counts(app) == before


def _personal_token(app, *, audience=GRAFANA, narrowed=None) -> str:
    with app.app_context():
        _, token = personal_tokens.create(admin_accounts.find_account("alice"), audience=audience, roles=narrowed)
        db.session.commit()
        return token


def test_personal_token_introspection_for_its_audience(app, browser, rp):
    """RFC 7662 §2.2 members for a personal access token, asked by a client whose default
    audience is the token's."""
    token = _personal_token(app)
    info = _introspect(browser.http, rp, token)
    assert info.pop("exp") > info.pop("iat") == info.pop("nbf")
    with app.app_context():
        sub = admin_accounts.find_account("alice").subject
    assert info == {"active": True, "token_type": "Bearer", "iss": ISSUER, "sub": sub,
                    "username": "alice", "aud": GRAFANA, "resource_access": {GRAFANA: GRAFANA_SLICE}}


def test_personal_token_narrowed_to_some_roles_shows_only_those(app, browser, rp):
    token = _personal_token(app, narrowed=["viewer"])
    info = _introspect(browser.http, rp, token)
    assert info["resource_access"][GRAFANA]["roles"] == ["viewer"]
    _change_grant(app, "viewer", give=False)  # the owner loses it: so does the token
    assert "resource_access" not in _introspect(browser.http, rp, token)


def test_personal_token_is_inactive_to_clients_of_another_audience(app, browser, rp):
    """RFC 7662 §4: the server "SHOULD" limit which clients may learn about a token; a client
    of another audience gets exactly ``{"active": false}`` (§2.2). A client registered for the
    audience, as its own or as an RFC 8707 resource, learns about it."""
    token = _personal_token(app, audience=BILLING)
    assert _introspect(browser.http, rp, token) == {"active": False}
    billing_rs = make_client(app, name="Billing RS", audience=BILLING)
    assert _introspect(browser.http, billing_rs, token)["active"] is True
    assert _introspect(browser.http, rp, _personal_token(app, audience=WIKI))["active"] is True


def test_personal_token_narrowed_to_a_role_not_to_its_name(app, browser, rp):
    """A token narrowed to "viewer" holds that role, by id: once the role is removed, another
    created under the same name and granted gives the token nothing (it would widen it)."""
    token = _personal_token(app, narrowed=["viewer"])
    _change_grant(app, "viewer", give=False)
    with app.app_context():
        roles.remove("viewer")
        roles.define("viewer", roles.parse_statements(
            [{"audience": GRAFANA, "actions": ["dashboards:*"], "resources": ["*"]}]))
        roles.grant(admin_accounts.find_account("alice"), "viewer")
        db.session.commit()
        assert personal_tokens.view(personal_tokens.list_for(admin_accounts.find_account("alice"))[0])["roles"] == []
    assert "resource_access" not in _introspect(browser.http, rp, token)


def test_personal_token_does_not_follow_a_reused_role_id(app, browser, rp):
    """SQLite hands the highest id out again once its row is gone: "accountant", the last role
    defined, removed and defined again, may get the same id. Removing a role takes its id out of
    the tokens narrowed to it, so the new role is not theirs whatever its id."""
    token = _personal_token(app, audience=BILLING, narrowed=["accountant"])
    billing_rs = make_client(app, name="Billing RS", audience=BILLING)
    assert _introspect(browser.http, billing_rs, token)["resource_access"][BILLING]["roles"] == ["accountant"]
    _change_grant(app, "accountant", give=False)
    with app.app_context():
        roles.remove("accountant")
        roles.define("accountant", roles.parse_statements(ACCOUNTANT))
        roles.grant(admin_accounts.find_account("alice"), "accountant")
        db.session.commit()
        row = personal_tokens.list_for(admin_accounts.find_account("alice"))[0]
        assert row.role_ids == [] and personal_tokens.view(row)["roles"] == []
    assert "resource_access" not in _introspect(browser.http, billing_rs, token)


def test_personal_token_keeps_its_role_when_the_role_is_renamed(app, browser, rp):
    """Renaming the role (here in the database: no operation renames one) neither drops it from
    the token nor hands the token a new role that takes the old name."""
    token = _personal_token(app, narrowed=["viewer"])
    with app.app_context():
        roles.find_role("viewer").name = "reader"
        roles.define("viewer", roles.parse_statements(
            [{"audience": GRAFANA, "actions": ["dashboards:*"], "resources": ["*"]}]))
        roles.grant(admin_accounts.find_account("alice"), "viewer")
        db.session.commit()
        assert personal_tokens.view(personal_tokens.list_for(admin_accounts.find_account("alice"))[0])["roles"] \
            == ["reader"]
    assert _introspect(browser.http, rp, token)["resource_access"][GRAFANA] == {
        "roles": ["reader"], "statements": [{"actions": ["dashboards:read"], "resources": ["team:*"]}]}


def test_revoked_or_unknown_personal_token_is_inactive(app, browser, rp):
    token = _personal_token(app)
    with app.app_context():
        row = personal_tokens.list_for(admin_accounts.find_account("alice"))[0]
        personal_tokens.revoke(row)
        db.session.commit()
    assert _introspect(browser.http, rp, token) == {"active": False}
    assert _introspect(browser.http, rp, personal_tokens.PREFIX + "x" * 43) == {"active": False}


def test_consent_page_describes_the_roles_scope(app, browser, rp):
    params = browser.authorize_params(rp[0], scope=SCOPE)
    response = browser.follow(browser.http.get("/authorize", query_string=params))
    consent = browser.follow(browser.login(response))
    page = browser.http.get(consent.headers["Location"])
    assert "See the roles you hold for the services it uses, and what they let you do" in page.text


def test_discovery_lists_the_roles_scope_and_claims(app, client):
    metadata = client.get("/.well-known/openid-configuration").json
    assert "roles" in metadata["scopes_supported"]
    assert {"roles", "resource_access"} <= set(metadata["claims_supported"])


# ---- the operator's side: oidc-provider client create/update ----

def _cli(*args, ok=True):
    settings = settings_for()
    env = {"OIDC_ISSUER": ISSUER, "OIDC_SECRET_KEY": settings.secret_key, "OIDC_DATABASE_URL": DATABASE_URL,
           "OIDC_CONFIG_FILE": ""}
    result = CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)
    assert (result.exit_code == 0) == ok, (args, result.stdout, result.stderr)
    return json.loads(result.stdout) if ok and "--json" in args else result


def test_cli_client_create_and_update_set_audience_resources_and_require_grant(app):
    created = _cli("client", "create", "--name", "Grafana", "--redirect-uri", "https://rp.example/cb",
                   "--audience", GRAFANA, "--resource", WIKI, "--resource", BILLING, "--require-grant", "--json")
    assert (created["audience"], created["resources"], created["require_grant"]) == (GRAFANA, [WIKI, BILLING], True)
    client_id = created["client_id"]
    updated = _cli("client", "update", client_id, "--resource", BACKUP, "--no-require-grant", "--json")
    assert (updated["audience"], updated["resources"], updated["require_grant"]) == (GRAFANA, [BACKUP], False)
    cleared = _cli("client", "update", client_id, "--no-resources", "--audience", "none", "--json")
    assert (cleared["audience"], cleared["resources"]) == (None, [])
    assert _cli("client", "show", client_id, "--json")["resources"] == []


@pytest.mark.parametrize("resource", ["api", WIKI + "#top", "/relative", "https://"])
def test_cli_refuses_a_resource_that_is_no_absolute_uri_without_fragment(app, resource):
    result = _cli("client", "create", "--name", "Bad", "--redirect-uri", "https://rp.example/cb",
                  "--resource", resource, ok=False)
    assert result.stdout == ""
    assert result.stderr.startswith("Error: resource ") and len(result.stderr.strip().splitlines()) == 1
