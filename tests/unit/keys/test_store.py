"""keys/store.py and keys/encryption.py: encryption at rest, rotation, pruning, signing and
verifying, and the ``oidc-provider keys`` commands."""

from __future__ import annotations

import base64
import json
from datetime import timedelta

import pytest
from click.testing import CliRunner
from cryptography.exceptions import InvalidTag
from flask import current_app
from joserfc import jwk, jwt
from sqlalchemy import select

from oidc_provider.cli import main
from oidc_provider.clock import utcnow
from oidc_provider.extensions import db
from oidc_provider.keys import store as store_module
from oidc_provider.keys.encryption import Sealer
from oidc_provider.keys.store import InvalidSignature, KeyStore, KeysUnreadable
from oidc_provider.models import SigningKey
from oidc_provider.settings import SIGNING_ALGS


def _rows(state=None):
    query = select(SigningKey).order_by(SigningKey.id)
    if state:
        query = query.where(SigningKey.state == state)
    return db.session.scalars(query).all()


def _states():
    return {(row.alg, row.kid): row.state for row in _rows()}


def _header(token):
    head = token.split(".")[0]
    return json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))


def _public_jwk(token):
    kid = _header(token)["kid"]
    return db.session.scalar(select(SigningKey).where(SigningKey.kid == kid)).public_jwk


@pytest.fixture
def keys(ctx):
    return ctx.extensions["oidc_server"].policy.keys


# ---- encryption at rest ----

def test_private_parts_are_not_stored_in_clear(ctx, private_jwks):
    rows = {row.kid: row for row in _rows()}
    sealer = Sealer(ctx.extensions["oidc_settings"].secret_key)
    for pair in private_jwks.values():
        for private in pair:
            row = rows[private["kid"]]
            assert private["d"].encode() not in row.private_jwk_encrypted
            assert b'"d"' not in row.private_jwk_encrypted
            assert "d" not in row.public_jwk
            opened = json.loads(sealer.open(row.private_jwk_encrypted, row.kid.encode()))
            assert opened["d"] == private["d"]


def test_another_secret_key_cannot_decrypt(ctx):
    row = _rows("active")[0]
    with pytest.raises(InvalidTag):
        Sealer("another-secret-key-" + "y" * 32).open(row.private_jwk_encrypted, row.kid.encode())
    other = KeyStore(ctx.extensions["oidc_settings"].replace(secret_key="another-secret-key-" + "y" * 32))
    with pytest.raises(KeysUnreadable, match="OIDC_SECRET_KEY does not open the signing keys stored in this database"):
        other.sign({"sub": "x"}, "RS256")


def test_ciphertext_is_bound_to_its_kid(ctx):
    first, second = _rows("active")[:2]
    sealer = Sealer(ctx.extensions["oidc_settings"].secret_key)
    with pytest.raises(InvalidTag):
        sealer.open(first.private_jwk_encrypted, second.kid.encode())


def test_sealing_twice_gives_different_ciphertexts(ctx):
    sealer = Sealer(ctx.extensions["oidc_settings"].secret_key)
    assert sealer.seal(b"same", b"kid") != sealer.seal(b"same", b"kid")
    with pytest.raises(ValueError, match="unknown ciphertext version"):
        sealer.open(b"\x02" + sealer.seal(b"same", b"kid")[1:], b"kid")


# ---- rotation ----

def test_rotate_makes_next_key_active_and_retires_old(keys):
    before = _states()
    old_active_kids = {kid for (_, kid), state in before.items() if state == "active"}
    old_next_kids = {kid for (_, kid), state in before.items() if state == "next"}
    assert sorted(alg for (alg, _), state in before.items() if state == "active") == sorted(SIGNING_ALGS)

    promoted = keys.rotate()

    assert {row.alg for row in promoted} == set(SIGNING_ALGS)
    assert {row.kid for row in promoted} == old_next_kids
    after = _rows()
    for alg in SIGNING_ALGS:
        states = sorted(row.state for row in after if row.alg == alg)
        assert states == ["active", "next", "retired"]
    retired = _rows("retired")
    assert {row.kid for row in retired} == old_active_kids
    settings = current_app.extensions["oidc_settings"]
    for row in retired:
        assert row.retired_at is not None
        assert row.publish_until - row.retired_at == timedelta(
            seconds=max(settings.access_token_ttl, settings.id_token_ttl) + 60)
    published = {key["kid"] for key in keys.jwks()["keys"]}
    assert old_active_kids <= published
    assert {row.kid for row in after} == published


def test_tokens_signed_before_rotation_still_verify(keys):
    """OIDC Core §10.1.1: the old key keeps verifying what it signed; new tokens carry the
    new key's kid."""
    old = keys.sign({"sub": "s"}, "ES256")
    keys.rotate()
    new = keys.sign({"sub": "s"}, "ES256")
    assert jwt.decode(old, jwk.import_key(_public_jwk(old)), algorithms=["ES256"]).claims["sub"] == "s"
    header, claims = keys.verify(old)
    assert claims == {"sub": "s"}
    assert keys.verify(new)[0]["kid"] != header["kid"]
    assert keys.verify(new)[0]["kid"] in {row.kid for row in _rows("active")}


def test_rotate_twice_keeps_one_active_key_per_alg(keys):
    keys.rotate()
    keys.rotate(["RS256"])
    for alg in SIGNING_ALGS:
        assert len([row for row in _rows("active") if row.alg == alg]) == 1
        assert len([row for row in _rows("next") if row.alg == alg]) == 1
    assert len([row for row in _rows("retired") if row.alg == "RS256"]) == 2


def test_ensure_is_idempotent(keys):
    assert keys.ensure() == []
    assert len(_rows()) == 2 * len(SIGNING_ALGS)


# ---- pruning ----

def test_prune_keeps_retired_keys_until_publish_until(keys, monkeypatch):
    keys.rotate()
    retired = _rows("retired")
    publish_until = max(row.publish_until for row in retired)
    assert keys.prune() == 0

    monkeypatch.setattr(store_module, "utcnow", lambda: publish_until - timedelta(seconds=1))
    assert keys.prune() == 0
    assert {row.kid for row in retired} <= {key["kid"] for key in keys.jwks()["keys"]}

    monkeypatch.setattr(store_module, "utcnow", lambda: publish_until + timedelta(seconds=1))
    assert keys.prune() == len(retired)
    assert _rows("retired") == []
    assert len(_rows("active")) == len(SIGNING_ALGS)
    assert len(_rows("next")) == len(SIGNING_ALGS)


def test_retired_key_leaves_jwks_after_publish_until(keys, monkeypatch):
    keys.rotate()
    retired = {row.kid for row in _rows("retired")}
    later = utcnow() + timedelta(days=1)
    monkeypatch.setattr(store_module, "utcnow", lambda: later)
    assert not retired & {key["kid"] for key in keys.jwks()["keys"]}



def test_jwks_document_is_made_once_and_again_when_the_published_set_changes(keys, monkeypatch):
    """RFC 7517 §5: the served set is the published one; it is serialized once (web/discovery.py)
    and again after a rotation, and when a retired key's ``publish_until`` passes."""
    made = []

    def make(jwks):
        made.append(sorted(key["kid"] for key in jwks["keys"]))
        return object()

    first = keys.jwks_document(make)
    assert keys.jwks_document(make) is first and len(made) == 1
    assert made[0] == sorted(key["kid"] for key in keys.jwks()["keys"])

    keys.rotate()
    rotated = keys.jwks_document(make)
    assert rotated is not first and made[-1] == sorted(key["kid"] for key in keys.jwks()["keys"])
    retired = {row.kid for row in _rows("retired")}
    assert retired <= set(made[-1])

    later = utcnow() + timedelta(days=1)
    monkeypatch.setattr(store_module, "utcnow", lambda: later)
    assert keys.jwks_document(make) is not rotated
    assert not retired & set(made[-1]) and len(made) == 3


# ---- signing and verifying ----

def test_sign_uses_the_active_key_and_sets_typ(keys):
    active = {row.alg: row.kid for row in _rows("active")}
    for alg in SIGNING_ALGS:
        header, claims = keys.verify(keys.sign({"sub": "s"}, alg, typ="at+jwt"))
        assert header == {"alg": alg, "kid": active[alg], "typ": "at+jwt"}
        assert claims == {"sub": "s"}


def test_verify_refuses_malformed(keys):
    for bad in ["", "abc", "a.b", "a.b.c", "x" * 20000, None, "a.b.c.d", "\u00e9.\u00e9.\u00e9"]:
        with pytest.raises(InvalidSignature):
            keys.verify(bad)


def test_verify_refuses_a_foreign_key_with_our_kid(keys):
    kid = _rows("active")[0].kid
    foreign = jwk.RSAKey.generate_key(2048, private=True)
    token = jwt.encode({"alg": "RS256", "kid": kid}, {"sub": "s"}, foreign, algorithms=["RS256"])
    with pytest.raises(InvalidSignature):
        keys.verify(token)


def test_verify_refuses_alg_not_matching_the_key(keys):
    """RFC 8725 §3.1: the algorithm comes from the key, not from the attacker's header."""
    token = keys.sign({"sub": "s"}, "RS256")
    _, payload, signature = token.split(".")
    header = _header(token)
    for alg in ("ES256", "none", "HS256"):
        forged = base64.urlsafe_b64encode(json.dumps({**header, "alg": alg}).encode()).rstrip(b"=").decode()
        with pytest.raises(InvalidSignature):
            keys.verify(f"{forged}.{payload}.{signature}")


def test_sign_without_active_key_is_lookup_error(keys):
    for row in _rows("active"):
        if row.alg == "EdDSA":
            row.state = "next"
    db.session.commit()
    keys.invalidate()
    with pytest.raises(LookupError):
        keys.sign({"sub": "s"}, "EdDSA")


# ---- the CLI ----

def _cli(app, *args):
    settings = app.extensions["oidc_settings"]
    env = {"OIDC_ISSUER": settings.issuer, "OIDC_SECRET_KEY": settings.secret_key,
           "OIDC_DATABASE_URL": settings.database_url, "OIDC_ARGON2_TIME_COST": "1",
           "OIDC_ARGON2_MEMORY_COST": "1024", "OIDC_ARGON2_PARALLELISM": "1",
           "OIDC_CONFIG_FILE": None}
    result = CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_cli_keys_list_json(app):
    listed = _cli(app, "keys", "list", "--json")
    with app.app_context():
        expected = {(row.kid, row.alg, row.state) for row in _rows()}
        db.session.remove()
    assert {(v["kid"], v["alg"], v["state"]) for v in listed} == expected
    assert all(set(v) == {"kid", "alg", "state", "created_at", "publish_until", "readable"} for v in listed)
    assert all(v["readable"] is True for v in listed)


def test_cli_keys_rotate_json(app):
    with app.app_context():
        old_next = {row.alg: row.kid for row in _rows("next")}
        db.session.remove()
    rotated = _cli(app, "keys", "rotate", "--json")
    assert {v["alg"]: v["kid"] for v in rotated} == old_next
    assert all(v["state"] == "active" for v in rotated)
    states = {v["kid"]: v["state"] for v in _cli(app, "keys", "list", "--json")}
    assert all(states[kid] == "active" for kid in old_next.values())
    assert sorted(states.values()).count("retired") == len(SIGNING_ALGS)


# ---- tokens verified before ----

def test_a_token_verified_before_is_not_verified_again(keys, monkeypatch):
    """A resource server introspects, and an app calls UserInfo with, the same token many times:
    its signature is checked once per process, and each caller gets claims of its own."""
    token = keys.sign({"sub": "s", "nested": {"a": [1]}}, "RS256", typ="at+jwt")
    first = keys.verify(token)
    checked = []
    validate = store_module.jws.validate_compact
    monkeypatch.setattr(store_module.jws, "validate_compact", lambda *a, **k: checked.append(1) or validate(*a, **k))
    again = keys.verify(token)
    assert again == first and checked == []
    again[1]["nested"]["a"].append(2)
    again[0]["kid"] = "changed"
    assert keys.verify(token) == first
    # A token that differs in one character is a token of its own, checked in full.
    with pytest.raises(InvalidSignature):
        keys.verify(token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1])
    assert checked == [1]


def test_a_revoked_keys_tokens_fail_though_verified_before(keys):
    """keys revoke: a compromised key's tokens stop verifying once the process reloads its
    keys, whether or not it verified them before."""
    token = keys.sign({"sub": "s"}, "ES256")
    header, _ = keys.verify(token)
    keys.revoke([header["kid"]])
    db.session.commit()
    keys.invalidate()
    with pytest.raises(InvalidSignature):
        keys.verify(token)


def test_tokens_verified_are_kept_within_a_bound(keys, monkeypatch):
    monkeypatch.setattr(store_module, "VERIFIED_KEPT", 3)
    for n in range(10):
        keys.verify(keys.sign({"sub": f"s{n}"}, "EdDSA"))
        assert len(keys._verified) <= 3
