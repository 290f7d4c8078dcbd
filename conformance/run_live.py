#!/usr/bin/env python3
"""Start a live ``oidc-provider serve`` on a free loopback port (fresh SQLite database, or a
scratch PostgreSQL database when OIDC_TEST_DATABASE_URL is a PostgreSQL URL), register a user
and the three clients the conformance plans need with the operator CLI, run ``run.py`` against
it, stop the server, and exit with ``run.py``'s status. ``bin/test`` calls this.

To keep CI fast, oidcc-codereuse-30seconds waits ``--codereuse-wait`` seconds (default here:
2) instead of the suite's 30; pass ``--codereuse-wait 30`` for the real wait.
"""

from __future__ import annotations

import argparse
import os
import secrets
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from live import LiveServer, LiveServerError  # noqa: E402

REDIRECT_URI = "http://127.0.0.1:9/conformance/callback"  # never contacted: the runner stops at it
POST_LOGOUT_REDIRECT_URI = "http://127.0.0.1:9/conformance/logged-out"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--codereuse-wait", default="2")
    parser.add_argument("--only", action="append", default=[])
    args = parser.parse_args()

    server = LiveServer(database_url=os.environ.get("OIDC_TEST_DATABASE_URL"))
    try:
        server.prepare()
        password = secrets.token_urlsafe(18)
        server.create_user("conformance", password, name="Conformance Tester")
        clients = {}
        for key, auth in (("client", None), ("client2", None), ("post-client", "client_secret_post")):
            clients[key] = server.create_client(
                f"Conformance {key}", [REDIRECT_URI], post_logout_redirect_uris=[POST_LOGOUT_REDIRECT_URI],
                grants=["refresh_token"], auth_method=auth,
            )
        server.start()
        # "--name=value": a generated secret may start with "-", which argparse would take for
        # an option.
        command = [sys.executable, str(HERE / "run.py"), f"--issuer={server.issuer}",
                   f"--redirect-uri={REDIRECT_URI}", f"--post-logout-redirect-uri={POST_LOGOUT_REDIRECT_URI}",
                   "--username=conformance", f"--password={password}",
                   f"--codereuse-wait={args.codereuse_wait}"]
        for key, client in clients.items():
            command += [f"--{key}-id={client['client_id']}", f"--{key}-secret={client['client_secret']}"]
        for name in args.only:
            command += ["--only", name]
        print(f"conformance: running against {server.issuer}", flush=True)
        status = subprocess.run(command, check=False, timeout=900).returncode
        if status != 0:
            print("---- last lines of the server log ----\n" + server.log_tail(), flush=True)
        return status
    except LiveServerError as exc:
        print(f"conformance: {exc}", file=sys.stderr)
        return 1
    finally:
        server.stop()


if __name__ == "__main__":
    sys.exit(main())
