"""``init``, ``serve``, ``dev`` and ``cleanup``."""

from __future__ import annotations

import atexit
import functools
import json
import os
import shlex
import shutil
import tempfile
from datetime import timedelta
from pathlib import Path

import click
from flask import current_app
from sqlalchemy import delete, func, select, update
from sqlalchemy.engine import make_url

from .. import dbfiles, logs, metrics, serving
from ..admin import accounts as admin_accounts
from ..admin import clients as admin_clients
from ..audit import Event, record
from ..authn.throttle import forget_stale
from ..clock import utcnow
from ..extensions import db
from ..keys.store import KeysUnreadable
from ..models import (
    Account,
    AuditEvent,
    AuthorizationCode,
    PendingRequest,
    PersonalToken,
    RefreshToken,
    RevokedToken,
    UpstreamState,
    UsedAssertion,
    WebAuthnChallenge,
    notify,
)
from ..settings import Settings, SettingsError, dev_environment
from .common import app_context, emit, json_option
from .config import write_dev_env


def prepare(app, *, upgrade: bool = True) -> list:
    """Apply migrations (``upgrade``) and make sure signing keys exist; on PostgreSQL, put back
    the triggers that announce changes (``models/notify.py``) should one be missing (a dump
    restored without them, one dropped by hand). Idempotent."""
    from flask_migrate import upgrade as apply_migrations

    if upgrade:
        apply_migrations(directory=app.extensions["migrate"].directory)
        notify.install(db.engine)
    keys = app.extensions["oidc_server"].policy.keys
    try:
        created = keys.ensure()
        keys.check()
    except KeysUnreadable as exc:
        raise click.ClickException(str(exc)) from None
    return created


@click.command("init")
@json_option
def init(as_json):
    """Create or migrate the database and create signing keys if there are none."""
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None
    tightened = _tighten_sqlite_files(settings.database_url)  # before SQLite opens (and copies) them
    with app_context(settings, upgrading=True) as app:
        created = prepare(app)
        lines = [f"{path}: was mode {mode:04o}, readable beyond this account; now 0600"
                 for path, mode in tightened]
        emit({"keys_created": [k.kid for k in created], "files_tightened": [str(p) for p, _ in tightened]},
             as_json, "\n".join([*lines, f"database ready; {len(created)} signing key(s) created"]))


def _tighten_sqlite_files(database_url: str) -> list:
    """A SQLite database (and its -wal/-shm files) open to other local users made 0600: new ones
    are created so (``dbfiles``), older ones may not have been."""
    if not database_url.startswith("sqlite:"):
        return []
    url = make_url(database_url)
    path = dbfiles.sqlite_path(url.database)
    try:
        return dbfiles.tighten(path) if path is not None else []
    except OSError as exc:
        raise click.ClickException(f"{exc.filename}: cannot make it private (mode 0600): {exc.strerror}") from None


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--workers", default=lambda: min(os.cpu_count() or 1, 64), show_default="the number of CPU cores",
              type=click.IntRange(1, 64), help="Worker processes.")
@click.option("--certfile", type=click.Path(exists=True, dir_okay=False),
              help="Serve https with this certificate chain (PEM).")
@click.option("--keyfile", type=click.Path(exists=True, dir_okay=False),
              help="The certificate's private key (PEM).")
@click.option("--migrate", is_flag=True,
              help="Apply pending database migrations first (without it, serve refuses a database that is behind).")
@click.option("--server", "server_name", type=click.Choice(serving.SERVERS), default=None,
              help="The HTTP server (default: OIDC_SERVE_SERVER, granian).")
def serve(host, port, workers, certfile, keyfile, migrate, server_name):
    """Run the production server (granian, or gunicorn) on a database whose migrations are current."""
    if bool(certfile) != bool(keyfile):
        raise click.ClickException("--certfile and --keyfile go together")
    try:
        settings = Settings.from_env().validate()
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None
    metrics_dir = _metrics_directory(settings)
    with app_context(settings, upgrading=migrate) as app:
        prepare(app, upgrade=migrate)
    if (server_name or settings.serve_server) == "gunicorn":
        _serve_gunicorn(settings, host=host, port=port, workers=workers, certfile=certfile, keyfile=keyfile,
                        metrics_dir=metrics_dir)
        return
    from ..serving import rsgi

    server = rsgi.server(settings, host=host, port=port, workers=workers, certfile=certfile, keyfile=keyfile)
    # granian has no hook for a worker's exit: each new worker drops what dead ones left.
    on_start = functools.partial(metrics.forget_dead_workers, metrics_dir) if metrics_dir else None
    rsgi.serve_forever(server, settings, on_worker_start=on_start)


def _serve_gunicorn(settings, *, host, port, workers, certfile, keyfile, metrics_dir) -> None:
    from gunicorn.app.base import BaseApplication

    from ..serving import gthread

    class Server(BaseApplication):
        def load_config(self):
            self.cfg.set("bind", f"{host}:{port}")
            self.cfg.set("workers", workers)
            for name, value in logs.gunicorn_options(settings).items():  # its lines in our format
                self.cfg.set(name, value)
            for name, value in gthread.gunicorn_options(settings).items():  # threads and timeouts
                self.cfg.set(name, value)
            self.cfg.set("forwarded_allow_ips", "*" if settings.proxy_hops else "127.0.0.1")
            # gunicorn >= 25 opens a control socket under $HOME by default; nothing here uses it,
            # and several providers on one machine (or one account) would share its path.
            self.cfg.set("control_socket_disable", True)
            if certfile:
                self.cfg.set("certfile", certfile)
                self.cfg.set("keyfile", keyfile)
            if metrics_dir:
                self.cfg.set("child_exit", lambda _arbiter, worker: metrics.worker_exited(worker.pid))

        def load(self):  # in each worker, after the fork
            return serving.worker_app(settings)

    Server().run()


def _metrics_directory(settings) -> str | None:
    """With metrics on, a new private directory where every worker keeps its counts, named
    before anything is counted and removed when this (the master) process exits. Workers are
    forked from here and exit through the same handlers, hence the check of the pid."""
    if not settings.metrics:
        return None
    path = tempfile.mkdtemp(prefix="oidc-provider-metrics-")  # mode 0700, empty
    metrics.use_directory(path)
    master = os.getpid()
    atexit.register(lambda: os.getpid() == master and shutil.rmtree(path, ignore_errors=True))
    return path


@click.command("dev")
@click.option("--instance", default="instance", show_default=True, type=click.Path(file_okay=False))
@click.option("--port", default=5000, show_default=True, type=int)
def dev(instance, port):
    """Development server on 127.0.0.1 with SQLite under ./instance and a demo user and client."""
    environ = dev_environment(instance)
    if port != 5000 and environ["OIDC_ISSUER"] == "http://127.0.0.1:5000":
        environ["OIDC_ISSUER"] = f"http://127.0.0.1:{port}"
    try:
        settings = Settings.from_env(environ)
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None
    demo_file = Path(instance).resolve() / "demo-credentials.json"
    with app_context(settings, upgrading=True) as app:
        prepare(app)
        if not demo_file.exists() and db.session.scalar(select(func.count(Account.id))) == 0:
            demo_file.write_text(json.dumps(_create_demo(settings), indent=2))
            demo_file.chmod(0o600)
            db.session.commit()
    if demo_file.exists():
        demo = json.loads(demo_file.read_text())
        click.echo(_demo_text(settings, demo, demo_file))
    env_file = write_dev_env(Path(instance).resolve(), environ, settings)
    click.echo(f"Other commands act on this instance in a shell that ran:\n"
               f"  set -a; . {shlex.quote(str(env_file))}; set +a\n")
    from .. import create_app

    create_app(settings).run(host="127.0.0.1", port=port, debug=False, use_reloader=False)


def _create_demo(settings) -> dict:
    import secrets

    passwords = current_app.extensions["oidc_passwords"]
    password = secrets.token_urlsafe(18)
    while passwords.policy.problem(password, username="demo", email="demo@example.com", name="Demo User"):
        password = secrets.token_urlsafe(18)  # a random password that happens to contain "demo"
    admin_accounts.create_user(passwords, username="demo",
                       email="demo@example.com", name="Demo User", password=password,
                       email_verified=True)
    client, secret = admin_clients.create_client(
        name="Demo app", redirect_uris=["http://127.0.0.1:8080/callback"],
        post_logout_redirect_uris=["http://127.0.0.1:8080/"], grants=["refresh_token"],
    )
    return {"username": "demo", "password": password, "client_id": client.client_id,
            "client_secret": secret, "redirect_uri": "http://127.0.0.1:8080/callback"}


def _demo_text(settings, demo, demo_file) -> str:
    return f"""
Development provider at {settings.issuer}
  discovery:     {settings.issuer}/.well-known/openid-configuration
  demo user:     {demo['username']} / {demo['password']}
  demo client:   client_id={demo['client_id']}
                 client_secret={demo['client_secret']}
                 redirect_uri={demo['redirect_uri']} (PKCE S256 required)
Try it: open {settings.issuer}/account and sign in, or point any OIDC library at the issuer.
(Demo credentials are kept in {demo_file}.)
"""


@click.command("cleanup")
@json_option
def cleanup(as_json):
    """Delete expired codes, tokens, expired or revoked personal tokens, sessions, passkey
    challenges, upstream login states, pending authorization requests, forgotten throttle
    counts, old audit rows and retired keys; erase refresh-token successors kept past the
    retry window."""
    from ..authn.sessions import cleanup_expired

    with app_context() as app:
        settings = app.extensions["oidc_settings"]
        now = utcnow()
        counts = {}
        for name, model, column in (
            ("authorization_codes", AuthorizationCode, AuthorizationCode.expires_at),
            ("revoked_tokens", RevokedToken, RevokedToken.expires_at),  # the deny-list (oauth/revocation.py)
            ("refresh_tokens", RefreshToken, RefreshToken.expires_at),
            ("used_assertions", UsedAssertion, UsedAssertion.expires_at),
            ("webauthn_challenges", WebAuthnChallenge, WebAuthnChallenge.expires_at),
            ("upstream_states", UpstreamState, UpstreamState.expires_at),
            ("pending_requests", PendingRequest, PendingRequest.expires_at),
        ):
            counts[name] = db.session.execute(delete(model).where(column < now)).rowcount or 0
        # Personal tokens: expired or revoked ones (the audit trail keeps their history).
        counts["personal_tokens"] = db.session.execute(delete(PersonalToken).where(
            (PersonalToken.expires_at < now) | PersonalToken.revoked_at.is_not(None))).rowcount or 0
        cutoff = now - timedelta(days=settings.audit_retention_days)
        counts["audit_events"] = db.session.execute(delete(AuditEvent).where(AuditEvent.at < cutoff)).rowcount or 0
        counts["throttle_counts"] = forget_stale(now=now)
        # A successor's sealed value is kept only for a retry within the grace window.
        grace = timedelta(seconds=settings.refresh_reuse_grace_seconds)
        counts["refresh_successors_erased"] = db.session.execute(
            update(RefreshToken).where(RefreshToken.sealed_value.is_not(None), RefreshToken.issued_at < now - grace)
            .values(sealed_value=None)).rowcount or 0
        db.session.commit()
        counts["sessions"] = cleanup_expired()
        counts["signing_keys"] = app.extensions["oidc_server"].policy.keys.prune()
        record(Event.CLEANUP, detail=counts)
        emit(counts, as_json, "\n".join(f"{k}: {v} deleted" for k, v in counts.items()))


COMMANDS = (init, serve, dev, cleanup)
