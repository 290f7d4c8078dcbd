"""How ``oidc-provider serve`` serves the app, and what every server's worker loads.

Two servers, chosen by ``--server`` (or ``OIDC_SERVE_SERVER``):

- ``granian`` (the default, ``granian_wsgi``): a Rust HTTP/1.1 server whose connections live
  in an async core, so an idle or slow client costs a file descriptor and a few kilobytes, not
  a Python thread; the application runs in a pool of ``OIDC_SERVE_THREADS`` Python threads per
  worker process.
- ``gunicorn`` (``gthread``): gunicorn's threaded worker, extended with a request deadline and
  a drained backlog on SIGTERM; kept so that the two can be compared side by side (bench/).

Either way each worker process builds its app with ``worker_app`` after it has started, so that
nothing the app opens (database connections, imported keys) is shared across a fork.
"""

from __future__ import annotations

SERVERS = ("granian", "gunicorn")


def __getattr__(name):
    # gunicorn's worker options, imported only by those who use them (bench/floor_app.py does).
    if name == "gunicorn_options":
        from .gthread import gunicorn_options

        return gunicorn_options
    raise AttributeError(name)


def worker_app(settings=None):
    """The app a worker serves, its signing keys already imported (``warm``)."""
    from .. import create_app

    return warm(create_app(settings))


def warm(app):
    """Import the signing keys before the process takes a request. Importing an RSA private key
    validates it (~70 ms); done by the first request that signs, it ran inside that request's
    transaction, which on SQLite holds the database's write lock, so every other request waited
    for it (issue 12, "no lock held across slow work"). Later loads reuse what is imported here.
    The pooled connection used is closed, so a server that forks after loading (gunicorn
    ``--preload``) shares none with its workers. Keys that cannot be read now (a database not
    ready, a wrong OIDC_SECRET_KEY) are left to the requests, which answer 503 and /readyz says
    why: the server still starts."""
    from sqlalchemy.exc import SQLAlchemyError

    from ..extensions import db
    from ..keys.store import KeysUnreadable

    with app.app_context():
        try:
            app.extensions["oidc_server"].policy.keys.check()
        except (KeysUnreadable, SQLAlchemyError):
            app.extensions["oidc_server"].policy.keys.invalidate()
        finally:
            db.session.remove()
            db.engine.dispose()
    return app
