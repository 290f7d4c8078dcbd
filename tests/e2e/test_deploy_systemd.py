"""``systemd-analyze verify`` on the units in ``deploy/``: every key known to this systemd,
every value well-formed, the timer's service present, and the commands executable.

verify refuses a unit whose ExecStart= binary does not exist, so the units are copied into a
temporary directory with ``/opt/oidc-provider/venv/bin/oidc-provider`` replaced by the
``oidc-provider`` of the venv running the tests; nothing else changes. verify reports unknown
keys and bad values as warnings with exit status 0, so any output at all fails the test.
bin/test installs Debian's ``systemd`` package (which ships systemd-analyze) when it is missing;
a missing systemd-analyze fails here rather than skipping.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from live import free_port  # conformance/live.py

from ..deploy_files import DEPLOY, UNITS, parse_command_line, read_env_file, read_unit
from ._deployed import as_user, clean_checkout, public_directory, python_for, sign_in, uids, wait_for, workers
from .conftest import REDIRECT_URI

pytestmark = pytest.mark.e2e

INSTALLED = "/opt/oidc-provider/venv/bin/oidc-provider"
SERVICE_UID = 65534 if os.geteuid() == 0 else os.geteuid()  # stands for User=oidc-provider (nobody)


def verify(directory: Path) -> subprocess.CompletedProcess:
    analyze = shutil.which("systemd-analyze")
    assert analyze, "systemd-analyze is missing: install Debian's systemd package (bin/test does)"
    return subprocess.run([analyze, "verify", "--man=no", *(str(directory / name) for name in UNITS)],
                          capture_output=True, text=True, timeout=60, check=False, stdin=subprocess.DEVNULL)


def copy_units(directory: Path) -> None:
    here = Path(sys.executable).parent / "oidc-provider"
    assert here.is_file(), here
    for name in UNITS:
        text = (DEPLOY / name).read_text()
        (directory / name).write_text(text.replace(INSTALLED, str(here)))


def test_units_verify_without_a_single_warning(tmp_path):
    copy_units(tmp_path)
    done = verify(tmp_path)
    assert (done.returncode, done.stdout + done.stderr) == (0, "")


def test_verify_would_report_a_mistake(tmp_path):
    """The check above is sensitive: a misspelt sandbox key and a bad value are reported."""
    copy_units(tmp_path)
    unit = tmp_path / "oidc-provider.service"
    unit.write_text(unit.read_text().replace("ProtectHome=yes", "ProtectHome=yes\nProtectHomes=yes\n"
                                             "RestrictAddressFamilies=AF_NOPE"))
    done = verify(tmp_path)
    output = done.stdout + done.stderr
    assert "Unknown key 'ProtectHomes'" in output, output
    assert "Failed to parse address family, ignoring: AF_NOPE" in output, output


# ---- the units' commands, run the way systemd would run them ----

def systemd_process(unit: dict, root: Path, uid: int) -> dict:
    """What systemd.exec(5) gives the unit's processes, with /etc/oidc-provider,
    /var/lib/oidc-provider and /opt/oidc-provider under ``root``: the EnvironmentFile=, the
    user's variables (User=), the working directory and the umask. The environment file is
    read as systemd reads it, by the manager (here: root), never by the service user."""
    service = unit["Service"]
    env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
           "USER": service["User"][0], "LOGNAME": service["User"][0], "HOME": str(root / "var/lib/oidc-provider"),
           **read_env_file(root / service["EnvironmentFile"][0].lstrip("/"))}
    return {"env": env, "cwd": root / service["WorkingDirectory"][0].lstrip("/"),
            "umask": int(service["UMask"][0], 8), "prefix": as_user(uid, uid)}


def command_line(line: str, root: Path, port: int) -> list[str]:
    binary, *args = line.split()
    assert binary == INSTALLED
    return [str(root / binary.lstrip("/")), *[str(port) if a == "8000" else a for a in args]]


@pytest.fixture
def installed_as_documented():
    """docs/operator-guide.md, "With systemd": a venv at /opt/oidc-provider/venv (here under a
    temporary root) and ``pip install .`` from a clean checkout (not editable)."""
    root = public_directory("oidc-systemd-")
    try:
        python = python_for(SERVICE_UID, SERVICE_UID, [sys._base_executable, "/usr/bin/python3"])
        venv = root / "opt/oidc-provider/venv"
        subprocess.run([python, "-m", "venv", str(venv)], check=True, capture_output=True, timeout=300)
        checkout = clean_checkout(root / "checkout")
        done = subprocess.run([str(venv / "bin/pip"), "install", "-q", "."], cwd=checkout, capture_output=True,
                              text=True, timeout=900, check=False)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        yield root
    finally:
        subprocess.run(["rm", "-rf", str(root)], check=False)


def test_the_units_commands_init_serve_clean_up_and_stop_as_their_user(installed_as_documented, tmp_path):
    """SQLite in the state directory, as the operator guide gives it: ExecStartPre= (init),
    then ExecStart= (serve) as the unit's non-root user, in StateDirectory= made as systemd
    makes it, under UMask=; a sign-in; the cleanup service; systemctl stop's SIGTERM."""
    root = installed_as_documented
    server, cleanup = (read_unit(DEPLOY / name) for name in ("oidc-provider.service", "oidc-provider-cleanup.service"))
    state = root / "var/lib/oidc-provider"  # StateDirectory=oidc-provider, StateDirectoryMode=0700
    state.mkdir(parents=True, mode=int(server["Service"]["StateDirectoryMode"][0], 8))
    if os.geteuid() == 0:
        os.chown(state, SERVICE_UID, SERVICE_UID)
    port = free_port()
    env_file = root / "etc/oidc-provider/env"  # install -m 0600 deploy/oidc-provider.env.example ...
    env_file.parent.mkdir(parents=True)
    example = (DEPLOY / "oidc-provider.env.example").read_text()
    sqlite = re.search(r"^#\s*(OIDC_DATABASE_URL=sqlite:////var/lib/oidc-provider/\S+)$", example, re.M).group(1)
    filled = (example.replace("OIDC_ISSUER=https://id.example.com", f"OIDC_ISSUER=http://127.0.0.1:{port}")
              .replace("OIDC_SECRET_KEY=\n", f"OIDC_SECRET_KEY={secrets.token_urlsafe(48)}\n")
              .replace("OIDC_DATABASE_URL=postgresql", "#OIDC_DATABASE_URL=postgresql")
              + sqlite.replace("////var/lib/", f"///{root}/var/lib/") + "\n")
    env_file.write_text(filled)
    env_file.chmod(0o600)
    run = systemd_process(server, root, SERVICE_UID)
    issuer = run["env"]["OIDC_ISSUER"]

    def execute(line: str, stdin: str | None = None) -> subprocess.CompletedProcess:
        done = subprocess.run([*run["prefix"], *command_line(line, root, port)], env=run["env"], cwd=run["cwd"],
                              umask=run["umask"], input=stdin, capture_output=True, text=True, timeout=120,
                              check=False)
        assert done.returncode == 0, f"{line}:\n{done.stdout}\n{done.stderr}"
        return done

    execute(server["Service"]["ExecStartPre"][0])
    database = state / "oidc.db"
    assert database.stat().st_uid == SERVICE_UID and database.stat().st_mode & 0o077 == 0, oct(database.stat().st_mode)
    log = tmp_path / "serve.log"
    with open(log, "wb") as out:
        process = subprocess.Popen([*run["prefix"], *command_line(server["Service"]["ExecStart"][0], root, port)],
                                   env=run["env"], cwd=run["cwd"], umask=run["umask"], stdout=out,
                                   stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_for(issuer + "/.well-known/openid-configuration", process, log)
        serve = parse_command_line(command_line(server["Service"]["ExecStart"][0], root, port)[1:])
        for pid in [process.pid, *workers(process.pid, serve.params["workers"])]:
            assert uids(pid) == {SERVICE_UID}, pid

        # The operator guide's `oidc` helper runs commands with the unit's user, environment
        # and working directory: the same as ExecStart= with other arguments.
        password = secrets.token_urlsafe(18)
        execute(f"{INSTALLED} user create alice --email alice@example.com --password-stdin", stdin=password + "\n")
        client = json.loads(execute(f"{INSTALLED} client create --name Unit --redirect-uri {REDIRECT_URI} "
                                    "--json").stdout)
        assert sign_in(issuer, client, "alice", password)["preferred_username"] == "alice"

        done = execute(cleanup["Service"]["ExecStart"][0])
        assert "authorization_codes" in json.loads(done.stdout)

        # systemctl stop: KillSignal= to the main process, SIGKILL after TimeoutStopSec=.
        assert server["Service"]["KillSignal"] == ["SIGTERM"]
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=int(server["Service"]["TimeoutStopSec"][0].removesuffix("s"))) == 0
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
    # Nothing else written there but gunicorn's control socket ($HOME/.gunicorn/gunicorn.ctl, mode 0600).
    assert {p.name for p in state.iterdir()} <= {"oidc.db", "oidc.db-wal", "oidc.db-shm", ".gunicorn"}
