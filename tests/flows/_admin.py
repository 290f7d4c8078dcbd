"""Set-up for the admin API tests: roles, grants and personal tokens made through the
services the CLI uses, so each test starts from a known set of accounts and names."""

from __future__ import annotations

from sqlalchemy import select

from oidc_provider.access import personal_tokens
from oidc_provider.access import roles as role_service
from oidc_provider.admin import accounts as admin_accounts
from oidc_provider.extensions import db
from oidc_provider.models import Account, AuditEvent, PersonalToken, Role, RoleGrant

from ..conftest import ISSUER
from ..helpers import make_user

API = "/api/admin"
OPENAPI = API + "/openapi.json"
APP = "https://app.example"  # another audience: a relying party's
ADMIN = {"audience": ISSUER, "actions": ["admin:*"], "resources": ["*"]}


def define_role(app, name: str, *statements: dict) -> None:
    with app.app_context():
        role_service.define(name, role_service.parse_statements(list(statements)), actor="test")
        db.session.commit()


def grant(app, username: str, role: str) -> None:
    with app.app_context():
        role_service.grant(admin_accounts.find_account(username), role, actor="test")
        db.session.commit()


def revoke(app, username: str, role: str) -> None:
    with app.app_context():
        role_service.revoke(admin_accounts.find_account(username), role, actor="test")
        db.session.commit()


def personal_token(app, username: str, *, audience: str = ISSUER, roles: list[str] | None = None) -> tuple[str, str]:
    """Returns (public id, token)."""
    with app.app_context():
        row, token = personal_tokens.create(admin_accounts.find_account(username), audience=audience, roles=roles)
        db.session.commit()
        return row.public_id, token


def admin_token(app, username: str = "ops") -> str:
    """A person holding the ``admin`` role (every admin permission on every resource at the
    issuer's audience), and a personal token of theirs for the issuer."""
    make_user(app, username)
    with app.app_context():
        exists = db.session.scalar(select(Role).where(Role.name == "admin"))
    if exists is None:
        define_role(app, "admin", ADMIN)
    grant(app, username, "admin")
    return personal_token(app, username)[1]


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def last_audit_id(app) -> int:
    with app.app_context():
        return db.session.scalar(select(db.func.max(AuditEvent.id))) or 0


def audit_since(app, after_id: int) -> list[dict]:
    with app.app_context():
        rows = db.session.scalars(select(AuditEvent).where(AuditEvent.id > after_id).order_by(AuditEvent.id))
        return [{"event": r.event, "outcome": r.outcome, "reason": r.reason, "account": r.account,
                 "actor": r.actor, "detail": r.detail} for r in rows]


def snapshot(app) -> dict:
    """Everything an admin action may change, to show that a refused one changed nothing."""
    with app.app_context():
        out = {
            "accounts": [(a.username, a.kind, a.email, a.email_verified, a.name, a.disabled, a.password_hash)
                         for a in db.session.scalars(select(Account).order_by(Account.username))],
            "roles": [(r.name, r.description, r.statements)
                      for r in db.session.scalars(select(Role).order_by(Role.name))],
            "grants": sorted(db.session.execute(select(RoleGrant.account_id, RoleGrant.role_id)).all()),
            "tokens": [(t.public_id, t.revoked_at, t.role_ids) for t in
                       db.session.scalars(select(PersonalToken).order_by(PersonalToken.id))],
            "audit": db.session.scalar(select(db.func.count()).select_from(AuditEvent)),
        }
        db.session.remove()
        return out
