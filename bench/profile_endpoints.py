"""Profile one endpoint in-process (Flask test client, no HTTP server) with cProfile.

    python bench/profile_endpoints.py [token|jwks|userinfo|introspect|discovery] [--count N] [--db URL]

Shows where a request's time goes once the server stack is taken away; the floor for this is
a Flask route returning "ok" (printed first for scale).
"""

from __future__ import annotations

import argparse
import base64
import cProfile
import pstats
import secrets
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from flask import Flask  # noqa: E402

from oidc_provider import create_app  # noqa: E402
from oidc_provider.settings import Settings  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("endpoint", nargs="?", default="token",
                        choices=("token", "token-eddsa", "jwks", "userinfo", "introspect", "discovery"))
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--db", help="database URL (default: a temp SQLite file)")
    parser.add_argument("--top", type=int, default=0, help="also print the N top functions")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="oidc-profile-") as tmp:
        settings = Settings(issuer="http://127.0.0.1:9999", secret_key=secrets.token_urlsafe(48),
                            database_url=args.db or f"sqlite:///{tmp}/oidc.db")
        app = create_app(settings)
        with app.app_context():
            from oidc_provider.admin import services as admin_services
            from oidc_provider.cli.lifecycle import prepare
            from oidc_provider.extensions import db

            prepare(app)
            client, secret = admin_services.create_service(name="profiled")
            if args.endpoint == "token-eddsa":
                client.id_token_signed_response_alg = "EdDSA"
            db.session.commit()
            client_id = client.client_id
        auth = {"Authorization": "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()}
        http = app.test_client()
        token = http.post("/token", data={"grant_type": "client_credentials"}, headers=auth).json["access_token"]
        calls = {
            "token": lambda: http.post("/token", data={"grant_type": "client_credentials"}, headers=auth),
            "jwks": lambda: http.get("/jwks.json"),
            "discovery": lambda: http.get("/.well-known/openid-configuration"),
            "userinfo": lambda: http.get("/userinfo", headers={"Authorization": f"Bearer {token}"}),
            "introspect": lambda: http.post("/introspect", data={"token": token}, headers=auth),
        }
        call = calls["token" if args.endpoint == "token-eddsa" else args.endpoint]

        floor = Flask("floor")
        floor.add_url_rule("/ok", "ok", lambda: "ok")
        floor_http = floor.test_client()
        print(f"floor (test client): {_per_call(lambda: floor_http.get('/ok'), args.count):.3f} CPU ms/request")
        expected = 403 if args.endpoint == "userinfo" else 200  # a service token has no 'openid'
        status = call().status_code
        if status != expected:
            print(f"unexpected status {status}")
            return 1
        print(f"{args.endpoint}: {_per_call(call, args.count):.3f} CPU ms/request (unprofiled)")
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(args.count):
            call()
        profiler.disable()
        stats = pstats.Stats(profiler)
        print_by_package(stats)
        if args.top:
            stats.strip_dirs().sort_stats("cumulative").print_stats(args.top)
    return 0


def print_by_package(stats: pstats.Stats) -> None:
    """Own time (cProfile 'tottime') summed by the package the function lives in."""
    totals: dict[str, float] = {}
    for (filename, _line, name), (_cc, _nc, tottime, _ct, _callers) in stats.stats.items():
        if filename == "~":
            package = "builtins: " + name.split(" of ")[-1].strip("<>'") if " of " in name else "builtins"
            if "sqlite3" in name or "psycopg" in name:
                package = "database driver"
            elif "cryptography" in name or "openssl" in name:
                package = "cryptography (signing)"
        else:
            parts = Path(filename).parts
            package = next((parts[i + 1] for i, p in enumerate(parts) if p == "site-packages"
                            and i + 1 < len(parts)), None)
            if package is None:
                package = "oidc_provider" if "oidc_provider" in parts else Path(filename).name
            if package.startswith("oidc_provider"):
                package = "oidc_provider/" + parts[parts.index("oidc_provider") + 1]
        totals[package] = totals.get(package, 0.0) + tottime
    total = sum(totals.values())
    print(f"own time by package (profiled total {total:.3f}s):")
    for package, seconds in sorted(totals.items(), key=lambda kv: -kv[1])[:20]:
        print(f"  {seconds / total:6.1%}  {package}")


def _per_call(call, count: int) -> float:
    """CPU milliseconds per call: less disturbed than wall time on a shared machine."""
    start = time.process_time()
    for _ in range(count):
        call()
    return (time.process_time() - start) * 1e3 / count


if __name__ == "__main__":
    sys.exit(main())
