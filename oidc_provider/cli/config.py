"""``config check``: the settings the provider would run with, where each came from (default,
environment, file), secrets masked, and every problem at once."""

from __future__ import annotations

import json
import os
import shlex
from dataclasses import fields
from pathlib import Path

import click
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from ..settings import CONNECTOR_SECRET, NOT_SETTINGS, Settings, setting_names
from .common import json_option

MASK = "********"


@click.group("config")
def group():
    """The provider's settings (docs/configuration.md)."""


@group.command("check")
@json_option
@click.pass_context
def check(ctx, as_json):
    """Print the effective settings (secrets masked) with their source, and every problem;
    exit status 1 if there is one."""
    if ctx.find_root().obj is not None:
        raise click.UsageError("`config check` reads this machine's settings; run it without --server")
    loaded = Settings.load()
    problems = loaded.problems()
    rows = [{"variable": variable, "key": name, "value": shown(loaded.settings, name),
             "source": loaded.sources[name]} for variable, name in setting_names().items()]
    rows += [{"variable": variable, "key": None, "value": MASK, "source": "environment"}
             for variable in sorted(loaded.settings.connector_secrets)]
    if as_json:
        click.echo(json.dumps({"config_file": loaded.config_file, "settings": rows, "problems": problems},
                              indent=2))
    else:
        click.echo(_text(loaded.config_file, rows, problems))
    ctx.exit(1 if problems else 0)


def shown(settings: Settings, name: str) -> str:
    """A setting's value as it may be printed: no secret key, no database password, no
    connector secret."""
    value = getattr(settings, name)
    if name == "database_url":
        try:
            return make_url(value).render_as_string(hide_password=True)
        except ArgumentError:
            return MASK
    if name == "connectors":
        return _masked_connectors(value)
    field = next(f for f in fields(Settings) if f.name == name)
    if "secret" in name or ("password" in name and isinstance(value, str)) or not field.repr:
        return MASK if value else ""
    return value


def _masked_connectors(text: str) -> str:
    if not text:
        return ""
    try:
        table = json.loads(text)
    except ValueError:
        return MASK
    if not isinstance(table, dict):
        return MASK
    return json.dumps({name: {k: (MASK if "secret" in k else v) for k, v in entry.items()}
                       if isinstance(entry, dict) else entry for name, entry in table.items()})


def write_dev_env(instance: Path, environ: dict, settings: Settings) -> Path:
    """``instance/dev.env`` (mode 0600, beside the secret key): the variables that make every
    command act on the instance ``oidc-provider dev`` serves, with absolute paths, for
    ``set -a; . instance/dev.env; set +a``."""
    names = setting_names()
    values = {k: v for k, v in environ.items() if k in names or k in NOT_SETTINGS or CONNECTOR_SECRET.fullmatch(k)}
    values["OIDC_DATABASE_URL"] = settings.database_url  # relative SQLite paths made absolute
    if values.get("OIDC_CONFIG_FILE"):
        values["OIDC_CONFIG_FILE"] = os.path.abspath(values["OIDC_CONFIG_FILE"])
    path = instance / "dev.env"
    path.touch(mode=0o600)
    path.chmod(0o600)
    path.write_text("# Written by `oidc-provider dev`: the settings of this development instance.\n"
                    + "".join(f"{k}={shlex.quote(v)}\n" for k, v in sorted(values.items())))
    return path


def _text(config_file: str | None, rows: list[dict], problems: list[str]) -> str:
    width = max(len(row["variable"]) for row in rows)
    lines = [f"configuration file: {config_file or '(none: OIDC_CONFIG_FILE is not set)'}", ""]
    lines += [f"{row['variable']:<{width}} = {_plain(row['value']):<32} ({row['source']})" for row in rows]
    lines.append("")
    if problems:
        lines.append(f"{len(problems)} problem(s):")
        lines += [f"  - {problem}" for problem in problems]
    else:
        lines.append("no problems")
    return "\n".join(lines)


def _plain(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return '""' if value == "" else str(value)
