"""Shared CLI plumbing: build the app from settings, print text or JSON, fail in one line."""

from __future__ import annotations

import contextlib
import json
import sys

import click
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from ..dbcheck import DatabaseProblem, check, explain
from ..extensions import db
from ..problems import Problem
from ..settings import Settings, SettingsError

json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")


@contextlib.contextmanager
def app_context(settings: Settings | None = None, *, upgrading: bool = False):
    """The app for one command, its database checked first (reachable, schema current; with
    ``upgrading``, anything ``init`` can migrate). A database problem is one line naming the
    cause and the fix (``dbcheck``), never a traceback."""
    from .. import create_app

    ctx = click.get_current_context(silent=True)
    if ctx is not None and ctx.find_root().obj is not None:
        raise click.UsageError(f"`{ctx.command_path}` works on the server only; run it there without --server")
    try:
        app = create_app(settings or Settings.from_env())
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None
    with app.app_context():
        try:
            check(db.engine, app.extensions["migrate"].directory, upgrading=upgrading)
            yield app
            db.session.commit()
        except DatabaseProblem as exc:
            raise click.ClickException(str(exc)) from None
        except Problem as exc:
            db.session.rollback()
            raise click.ClickException(str(exc)) from None
        except IntegrityError:
            db.session.rollback()
            raise click.ClickException("something this command depends on changed meanwhile; "
                                       "nothing was changed, try again") from None
        except SQLAlchemyError as exc:
            with contextlib.suppress(SQLAlchemyError):
                db.session.rollback()
            raise click.ClickException(str(explain(exc, db.engine.url))) from None


def execute(operation: str, /, **params):
    """Run an admin operation: on the local database, or through the admin API of the
    provider named by ``--server``. Parameters that are None are left out."""
    from ..admin import OPERATIONS, Caller, run
    from .remote import call

    params = {k: v for k, v in params.items() if v is not None}
    target = click.get_current_context().find_root().obj
    if target is not None:
        return call(target, OPERATIONS[operation], params)
    with app_context():
        return run(operation, Caller("cli"), params)


def emit(data, as_json: bool, text: str | None = None) -> None:
    if as_json:
        click.echo(json.dumps(data, indent=2, sort_keys=True, default=str))
    else:
        click.echo(text if text is not None else _plain(data))


def _plain(data) -> str:
    if isinstance(data, list):
        return "\n".join(_plain(item) for item in data) or "(none)"
    if isinstance(data, dict):
        return "\n".join(f"{k}: {v}" for k, v in data.items())
    return str(data)


def read_password(from_stdin: bool, prompt: bool = True) -> str | None:
    if from_stdin:
        value = sys.stdin.readline().rstrip("\n")
        if not value:
            raise click.ClickException("no password on standard input")
        return value
    if prompt and sys.stdin.isatty():
        return click.prompt("Password", hide_input=True, confirmation_prompt=True)
    return None
