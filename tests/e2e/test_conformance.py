"""The conformance harness itself (``conformance/run.py``) against the live server: it reports
PASS, N/A and the summary line in the documented shape, and it fails loudly (non-zero exit,
``FAIL <module>: <reason>``) when the provider does not do what a module requires. The full
run is ``conformance/run_live.py``, which ``bin/test`` calls."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e
RUNNER = Path(__file__).resolve().parents[2] / "conformance" / "run.py"


def run_modules(live_server, *modules, username=None):
    first, second = live_server.clients["authlib"], live_server.clients["openid_client"]
    # "--name=value": generated secrets may start with "-", which argparse takes for an option.
    command = [sys.executable, str(RUNNER), f"--issuer={live_server.issuer}",
               f"--client-id={first['client_id']}", f"--client-secret={first['client_secret']}",
               f"--client2-id={second['client_id']}", f"--client2-secret={second['client_secret']}",
               f"--post-client-id={first['client_id']}", f"--post-client-secret={first['client_secret']}",
               f"--redirect-uri={live_server.redirect_uri}",
               f"--post-logout-redirect-uri={live_server.post_logout_redirect_uri}",
               f"--username={username or live_server.user}", f"--password={live_server.password}"]
    for name in modules:
        command += [f"--only={name}"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    return done.returncode, done.stdout.splitlines(), done.stderr


def test_runner_passes_modules_and_prints_the_summary_last(live_server):
    """OIDC Core §3.1 (oidcc-server) and RP-Initiated Logout 1.0 §2 (oidcc-rp-initiated-logout)
    through the harness; a module that does not apply to static clients is N/A, not counted."""
    status, lines, stderr = run_modules(live_server, "oidcc-server", "oidcc-rp-initiated-logout",
                                        "oidcc-idtoken-unsigned")
    assert status == 0, (lines, stderr)
    assert lines[0] == "PASS oidcc-server"
    assert lines[1].startswith("N/A oidcc-idtoken-unsigned: ")
    assert lines[2] == "PASS oidcc-rp-initiated-logout"
    assert lines[-1] == "2 passed, 0 failed"


def test_runner_fails_loudly_when_a_module_cannot_complete(live_server):
    """A module the provider does not complete (here: the person cannot sign in) is a FAIL
    with its reason, counted in the summary, and the exit status is non-zero. (An unknown
    username, so no real account collects failed logins.)"""
    status, lines, _ = run_modules(live_server, "oidcc-server", username="nobody-here")
    assert status == 1
    assert lines[0].startswith("FAIL oidcc-server: the login page keeps coming back")
    assert lines[-1] == "0 passed, 1 failed"
