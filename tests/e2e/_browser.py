"""Helpers for the Chromium tests: the provider and a recording relying party, each on a real
HTTP server in a background thread, and headless Chromium from Debian (never downloaded)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def launch_chromium(playwright):
    return playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)


class LiveServer:
    """A WSGI app on 127.0.0.1 with a free port. The port is bound before the app exists, so
    the app can be built knowing its own URL (the provider's issuer must match it)."""

    def __init__(self):
        self.app = None
        self.server = make_server("127.0.0.1", 0, self._wsgi, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)

    def _wsgi(self, environ, start_response):
        return self.app(environ, start_response)

    def start(self, app) -> LiveServer:
        self.app = app
        self.thread.start()
        return self

    def stop(self) -> None:
        if self.thread.is_alive():
            self.server.shutdown()
            self.thread.join(timeout=5)
        self.server.server_close()


@dataclass
class Received:
    method: str
    path: str
    args: dict
    form: dict


@dataclass
class RecordingRP:
    """The relying party's redirect and post-logout endpoints: every request is recorded, and
    the browser sees a small page saying the application got the response."""

    received: list[Received] = field(default_factory=list)

    def __call__(self, environ, start_response):
        request = Request(environ)
        self.received.append(Received(request.method, request.path, request.args.to_dict(),
                                      request.form.to_dict()))
        page = "<!doctype html><title>Relying party</title><h1>Back at the application</h1>"
        return Response(page, mimetype="text/html")(environ, start_response)

    def at(self, path: str) -> list[Received]:
        return [r for r in self.received if r.path == path]

    def last(self, path: str = "/cb") -> Received:
        """The last request to ``path`` (browsers also fetch /favicon.ico on their own)."""
        hits = self.at(path)
        assert hits, f"the relying party received nothing at {path}"
        return hits[-1]
