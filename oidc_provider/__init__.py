"""A standards OpenID Connect provider. ``create_app`` is the only place the app is wired."""

from __future__ import annotations

from pathlib import Path

from flask import Flask
from sqlalchemy import event
from sqlalchemy.engine import Engine
from werkzeug.middleware.proxy_fix import ProxyFix

from . import dbfiles, hot, logs, metrics, security_headers, transactions
from .authn.passkey_service import Passkeys
from .authn.passwords import Passwords
from .authn.second_factor import SecondFactors
from .authn.sessions import DatabaseSessionInterface
from .extensions import csrf, db, migrate
from .federation.registry import build_connectors
from .settings import Settings, absolute_sqlite_url
from .web import input_guard

PACKAGE = Path(__file__).resolve().parent  # templates/, templates/static/ and migrations/ ship inside it


def create_app(settings: Settings | None = None) -> Flask:
    settings = (settings or Settings.from_env()).validate()
    app = Flask(__name__, template_folder=str(PACKAGE / "templates"),
                static_folder=str(PACKAGE / "templates" / "static"), static_url_path="/static")
    app.config.update(
        SECRET_KEY=settings.secret_key,
        # While OIDC_SECRET_KEY changes, what the previous key signed still verifies (itsdangerous
        # signs with the last key of the list and accepts any; Flask-WTF has no fallbacks of its own).
        SECRET_KEY_FALLBACKS=[settings.secret_key_previous] if settings.secret_key_previous else [],
        WTF_CSRF_SECRET_KEY=[k for k in (settings.secret_key_previous, settings.secret_key) if k],
        SQLALCHEMY_DATABASE_URI=_database_url(settings.database_url),
        SQLALCHEMY_ENGINE_OPTIONS=_engine_options(settings.database_url),
        WTF_CSRF_TIME_LIMIT=None,  # the token lives as long as the server-side session
        MAX_CONTENT_LENGTH=64 * 1024,
        JSON_SORT_KEYS=False,
    )
    app.extensions["oidc_settings"] = settings
    # First: bounded <int:...> for every rule, and its check before every other before_request.
    input_guard.init_app(app)
    logs.init_app(app, settings)  # before ProxyFix: the access line logs the address it finds

    db.init_app(app)
    migrate.init_app(app, db, directory=str(PACKAGE / "migrations"))
    metrics.init_app(app, settings)
    csrf.init_app(app)
    transactions.init_app(app)
    app.session_interface = DatabaseSessionInterface(settings)
    if settings.proxy_hops:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=settings.proxy_hops,
                                x_proto=settings.proxy_hops, x_host=settings.proxy_hops)

    from .oauth.server import build_server
    from .web.discovery import metadata

    app.extensions[hot.KEY] = hot.HotReads()
    app.extensions["oidc_server"] = build_server(settings)
    app.extensions["oidc_metadata"] = metadata(settings)
    app.extensions["oidc_passwords"] = Passwords(settings)
    app.extensions["oidc_second_factors"] = SecondFactors(settings, app.extensions["oidc_passwords"])
    app.extensions["oidc_passkeys"] = Passkeys(settings)
    app.extensions["oidc_connectors"] = build_connectors(settings)

    from . import errors
    from .web import (
        account,
        account_tokens,
        authorize,
        consent,
        discovery,
        login,
        logout,
        passkeys,
        step_up,
        token,
        userinfo,
    )
    from .web import federation as federation_views
    from .web import forward_auth as forward_auth_views

    for module in (discovery, authorize, login, step_up, consent, token, userinfo, logout, account, account_tokens,
                   passkeys, federation_views, forward_auth_views):
        app.register_blueprint(module.bp)
    from .api import admin as admin_api
    from .api import attributes as attributes_api
    from .api import service_accounts as service_accounts_api

    app.register_blueprint(attributes_api.bp)
    app.register_blueprint(admin_api.bp)
    app.register_blueprint(service_accounts_api.bp)
    from .web import health

    app.register_blueprint(health.bp)
    errors.register(app)

    @app.context_processor
    def branding():
        return {"site_name": settings.site_name}

    security_headers.init_app(app, settings)

    return app


def _database_url(url: str) -> str:
    url = absolute_sqlite_url(url)
    if url.startswith("postgresql://"):
        return "postgresql+psycopg://" + url[len("postgresql://"):]
    return url


def _engine_options(url: str) -> dict:
    # hide_parameters: a database error's message (logged, or shown by a CLI command) names
    # the statement but not its values, which are what a client sent, digests and hashes.
    if url.startswith("sqlite"):
        return {"hide_parameters": True, "connect_args": {"timeout": 30}}
    # A database host that drops packets must not hang a command or a worker for minutes.
    return {"hide_parameters": True, "pool_pre_ping": True, "connect_args": {"connect_timeout": hot.TIMEOUT}}


@event.listens_for(Engine, "do_connect")
def _private_sqlite_file(dialect, _record, cargs, _cparams):
    """SQLite: a database file that does not exist yet is created mode 0600 (dbfiles)."""
    if dialect.name == "sqlite" and cargs:
        path = dbfiles.sqlite_path(cargs[0])
        if path is not None:
            dbfiles.create_private(path)


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection, _record):
    """SQLite: WAL (readers do not block the writer) and foreign keys on. pysqlite's own
    transaction handling is switched off so that ``transactions`` controls BEGIN."""
    if type(dbapi_connection).__module__.startswith("sqlite3"):
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        # The busy timeout first: journal_mode=WAL may need a lock, and a connection opened
        # while others write must wait for it rather than fail with "database is locked".
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()
