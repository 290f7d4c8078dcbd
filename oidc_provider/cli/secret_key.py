"""``oidc-provider secret-key ...``: change OIDC_SECRET_KEY (docs/operator-guide.md,
"Changing OIDC_SECRET_KEY")."""

from __future__ import annotations

import sys

import click
from flask import current_app

from ..keys.rekey import RekeyRefused, rekey
from .common import app_context, emit, json_option


@click.group("secret-key")
def group():
    """Change OIDC_SECRET_KEY, which seals signing keys, TOTP secrets and database credentials."""


@group.command("rotate")
@click.option("--new-key-stdin", is_flag=True, help="Read the new key from standard input (one line).")
@click.option("--new-key-file", type=click.Path(exists=True, dir_okay=False),
              help="Read the new key from this file (its first line).")
@json_option
def rotate(new_key_stdin, new_key_file, as_json):
    """Re-seal every sealed value under a new key, in one transaction. With a new key: from
    OIDC_SECRET_KEY to it. Without: from OIDC_SECRET_KEY_PREVIOUS to OIDC_SECRET_KEY."""
    if new_key_stdin and new_key_file:
        raise click.UsageError("give at most one of --new-key-stdin and --new-key-file")
    new_key = _read_new_key(new_key_stdin, new_key_file)
    with app_context():
        try:
            counts = rekey(current_app.extensions["oidc_settings"], new_key)
        except RekeyRefused as exc:
            raise click.ClickException(str(exc)) from None
    then = ("now run every process with OIDC_SECRET_KEY set to the new key" if new_key is not None
            else "OIDC_SECRET_KEY_PREVIOUS is no longer needed: restart without it")
    emit({**counts, "next_step": then}, as_json,
         "re-sealed: " + ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in counts.items()
                                   if k not in ("mode", "pending_totp_enrolments_dropped"))
         + f"\n{then}")


def _read_new_key(from_stdin: bool, path: str | None) -> str | None:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    if path:
        try:
            with open(path) as fh:
                return fh.readline().rstrip("\r\n")
        except (OSError, UnicodeError) as exc:
            raise click.ClickException(f"cannot read the new key from {path}: {exc.__class__.__name__}") from None
    return None
