"""The floor: a Flask app with one route returning "ok", served as ``oidc-provider serve``
serves the provider.

Whatever the provider does per request beyond this is the provider's own cost.

    python bench/floor_app.py --host 127.0.0.1 --port 8001 --workers 2 [--server gunicorn|granian]

``gunicorn`` (the default here): its threaded worker as ``oidc_provider.serving`` configures it,
same bind/worker/log settings as ``serve``. ``granian``: granian's WSGI interface through its
public API with the same worker processes and the same application threads per worker
(``OIDC_SERVE_THREADS``), HTTP/1.1, no access log; granian's other settings are its defaults.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from flask import Flask


def create_app() -> Flask:
    app = Flask(__name__)

    @app.get("/ok")
    def ok():
        return "ok"

    return app


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--server", choices=("gunicorn", "granian"), default="gunicorn")
    args = parser.parse_args(argv)
    if args.server == "granian":
        serve_granian(args)
        return

    from gunicorn.app.base import BaseApplication

    from oidc_provider.serving import gunicorn_options
    from oidc_provider.settings import Settings

    # The same settings as oidc_provider/cli/lifecycle.py ``serve``.
    class Server(BaseApplication):
        def load_config(self):
            self.cfg.set("bind", f"{args.host}:{args.port}")
            self.cfg.set("workers", args.workers)
            self.cfg.set("accesslog", None)
            self.cfg.set("forwarded_allow_ips", "127.0.0.1")
            for name, value in gunicorn_options(Settings()).items():  # worker, threads, timeouts
                self.cfg.set(name, value)

        def load(self):
            return create_app()

    Server().run()


def serve_granian(args) -> None:
    from granian.constants import HTTPModes, Interfaces
    from granian.server import Server

    from oidc_provider.settings import Settings

    threads = getattr(Settings(), "serve_threads", None)
    Server("floor_app:create_app", address=args.host, port=args.port, interface=Interfaces.WSGI,
           workers=args.workers, blocking_threads=threads, http=HTTPModes.http1, factory=True,
           log_access=False, working_dir=Path(__file__).resolve().parent).serve()


if __name__ == "__main__":
    main()
