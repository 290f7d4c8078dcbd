"""``oidc-provider user ...``: human accounts."""

import click

from ..admin import accounts as admin_accounts
from ..audit import Event, record
from ..authn import throttle
from .common import app_context, emit, execute, json_option, read_password


@click.group("user")
def group():
    """Manage people's accounts."""


@group.command("create")
@click.argument("username")
@click.option("--email", help="Email address.")
@click.option("--email-verified", is_flag=True, help="Mark the email address as verified.")
@click.option("--name", help="Display name.")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@json_option
def create(username, email, email_verified, name, password_stdin, as_json):
    """Create a person's account."""
    password = read_password(password_stdin)
    view = execute("accounts.create", username=username, email=email, name=name, password=password,
                   email_verified=email_verified)
    emit(view, as_json, f"created {view['username']} (sub {view['sub']})")


@group.command("list")
@json_option
def list_(as_json):
    """List accounts."""
    views = execute("accounts.list")
    emit(views, as_json, "\n".join(
        f"{v['username']}\t{v['email'] or '-'}\t{'disabled' if v['disabled'] else 'active'}"
        for v in views) or "(no accounts)")


@group.command("show")
@click.argument("username")
@json_option
def show(username, as_json):
    """Show one account with its roles."""
    view = execute("accounts.show", username=username)
    emit(view, as_json, _show_text(view))


def _show_text(view: dict) -> str:
    lines = [f"{k}: {v}" for k, v in view.items() if k not in ("lockout", "factors")]
    factors = view["factors"]
    lines.append(f"totp: {'enrolled ' + factors['totp'] if factors['totp'] else 'none'}")
    lines.append(f"recovery codes left: {factors['recovery_codes_left']}")
    lines.append("passkeys: " + (", ".join(p["name"] for p in factors["passkeys"]) or "none"))
    lockout = view["lockout"]
    if lockout is None:
        lines.append("lockout: none")
    elif lockout["locked_until"]:
        lines.append(f"lockout: locked until {lockout['locked_until']} after {lockout['failures']} "
                     "failed sign-ins (lift with `user unlock`)")
    else:
        lines.append(f"lockout: not locked; {lockout['failures']} failed sign-ins in the last hour")
    return "\n".join(lines)


@group.command("update")
@click.argument("username")
@click.option("--email", help="New email address; it is unverified unless --email-verified is given.")
@click.option("--name", help="New display name (an empty one removes it).")
@click.option("--email-verified/--no-email-verified", default=None,
              help="Mark the email address as verified, or not (federation matches verified addresses only).")
@json_option
def update(username, email, name, email_verified, as_json):
    """Change a person's email address, its verified flag or the display name. Audited."""
    if email is None and name is None and email_verified is None:
        raise click.UsageError("give --email, --name or --email-verified/--no-email-verified")
    view = execute("accounts.update", username=username, email=email, name=name, email_verified=email_verified)
    emit(view, as_json, f"updated {view['username']}: email {view['email'] or '-'} "
                        f"({'verified' if view['email_verified'] else 'unverified'}), name {view['name'] or '-'}")


def _set_disabled(username, disabled):
    execute("accounts.update", username=username, disabled=disabled)
    click.echo(f"{username} {'disabled' if disabled else 'enabled'}")


@group.command("disable")
@click.argument("username")
def disable(username):
    """Stop an account from signing in (its sessions and tokens stop working)."""
    _set_disabled(username, True)


@group.command("enable")
@click.argument("username")
def enable(username):
    """Let a disabled account sign in again."""
    _set_disabled(username, False)


@group.command("unlock")
@click.argument("username")
def unlock(username):
    """Lift a sign-in lockout after failed attempts, and forget the failures."""
    with app_context():
        account = admin_accounts.find_account(username)
        if throttle.unlock(account.username):
            record(Event.ACCOUNT_UPDATED, account=account, detail={"unlocked": True}, commit=False)
            click.echo(f"{username} unlocked")
        else:
            click.echo(f"{username} was not locked")


@group.command("reset-mfa")
@click.argument("username")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def reset_mfa(username, yes):
    """Remove every second factor (TOTP, recovery codes, passkeys) of someone who lost them all,
    and end their sessions; they sign in with their password and enrol again. Audited."""
    if not yes:
        click.confirm(f"Remove every second factor of {username} and end their sessions?", abort=True)
    with app_context() as app:
        account = admin_accounts.find_account(username)
        before = admin_accounts.reset_second_factors(app.extensions["oidc_second_factors"], account)
        removed = (["TOTP"] if before["totp"] else []) + \
            ([f"{before['recovery_codes_left']} recovery codes"] if before["recovery_codes_left"] else []) + \
            ([f"{len(before['passkeys'])} passkeys"] if before["passkeys"] else [])
        click.echo(f"{username}: removed {', '.join(removed) or 'nothing (no second factor was enrolled)'}; "
                   "sessions ended")


@group.command("delete")
@click.argument("username")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def delete(username, yes):
    """Delete an account with its sessions, consents and tokens."""
    if not yes:
        click.confirm(f"Delete {username} and everything it holds?", abort=True)
    execute("accounts.delete", username=username)
    click.echo(f"deleted {username}")


@group.command("set-password")
@click.argument("username")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
def set_password(username, password_stdin):
    """Set an account's password."""
    password = read_password(password_stdin)
    if password is None:
        raise click.ClickException("give the password with --password-stdin")
    execute("accounts.set-password", username=username, password=password)
    click.echo(f"password set for {username}")


@group.command("grant")
@click.argument("username")
@click.argument("role")
def grant(username, role):
    """Give a role to a person."""
    view = execute("accounts.grant", username=username, role=role)
    click.echo(f"{username} holds {role}" + ("" if view["changed"] else " (already did)"))


@group.command("revoke")
@click.argument("username")
@click.argument("role")
def revoke(username, role):
    """Take a role back (personal tokens narrowed to it stop using it at once)."""
    execute("accounts.revoke", username=username, role=role)
    click.echo(f"{username} no longer holds {role}")


@group.command("roles")
@click.argument("username")
@json_option
def roles(username, as_json):
    """The roles an account holds."""
    views = execute("accounts.roles", username=username)
    emit(views, as_json, "\n".join(v["name"] for v in views) or "(no roles)")
