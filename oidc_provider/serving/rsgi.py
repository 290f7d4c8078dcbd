"""How ``oidc-provider serve`` runs granian (the default server): its Rust core speaks HTTP/1.1,
and this module hands each whole request to the WSGI app in a pool of Python threads.

granian accepts and parses connections in an async core (hyper on tokio), one per worker
process. The app is a WSGI app, but it is served through granian's native RSGI interface
(``Bridge``) rather than its WSGI one, because granian's WSGI interface calls the app as soon as
a request's head has arrived and lets it read the body from the socket in its thread, with no
time limit: a client trickling a body would hold a thread for as long as it likes. Here:

- **Idle and kept-alive connections hold no thread**: they wait in the async core.
- **A request's head has a deadline**: hyper's ``header_read_timeout``
  (``OIDC_SERVE_REQUEST_TIMEOUT``) runs from the moment a connection is ready for a request
  (opened, or done with its previous response) until the head is complete; past it the
  connection is closed. hyper closes it without an answer (gunicorn ``--server gunicorn``
  sends ``408``); the same timer closes an idle kept-alive connection.
- **A request's body has the same deadline** from the end of its head, awaited in the event
  loop, not in a thread: past it the client gets ``408 Request Timeout`` and the connection is
  closed (RFC 9110 §15.5.9). Only whole requests reach a thread, so the app never waits on a
  client.
- **A TLS handshake runs in the async core** and holds no thread (granian gives it no deadline
  of its own: docs/security-model.md).
- **SIGTERM drains**: the master stops its workers; each stops accepting, finishes the
  requests it has, and exits; ``workers_kill_timeout`` (``OIDC_SERVE_GRACEFUL_TIMEOUT``) bounds
  the wait. A worker that dies is replaced (``respawn_failed_workers``), as gunicorn does.
- **Documents answer in the event loop**: discovery and the JWKS, bytes made once, are sent by
  ``fast_lane.FastLane`` without a thread or the WSGI app, when the app's answer would be the
  same (the lane's docstring says when that is).
- **Tokens and claims skip Flask**: a plain, successful ``client_credentials`` token request,
  introspection or UserInfo request is answered by a lane of ``lanes.py``, before the WSGI app, with the
  app's answer (its docstring says which requests); every other request goes to the app. A
  lane runs in the event loop once the body is in: the hand-off to a thread and back costs
  more CPU than the whole answer. On SQLite its reads are of a local file, and never wait for
  a writer under WAL; on PostgreSQL, whose reads wait on the network, they are awaited on the
  worker's own connections, and mostly kept (``loop_reads``) while the loop serves other requests.
- **HTTP/1.1 only** (no h2 over ALPN or h2c): the deadlines above are HTTP/1.1's, and a
  reverse proxy speaks HTTP/1.1 to its upstreams. TLS 1.2 is the lowest version (RFC 9325 §3.1.1).
"""

from __future__ import annotations

import asyncio
import functools
import gc
import io
import signal
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ..extensions import db
from ..loop_reads import LoopReads
from . import worker_app
from .fast_lane import FastLane
from .lanes import Lane, lanes

#: Bytes of a request body read before the app runs; larger ones get 413. The app itself
#: refuses bodies over 64 KiB (``MAX_CONTENT_LENGTH``) with its own 413.
BODY_LIMIT = 1024 * 1024
_CLOSE = ("connection", "close")


def server(settings, *, host: str, port: int, workers: int, certfile: str | None = None,
           keyfile: str | None = None):
    """The granian server for ``serve``; ``serve_forever`` runs it."""
    from granian.constants import HTTPModes, Interfaces, SSLProtocols
    from granian.http import HTTP1Settings
    from granian.server import MPServer

    from .. import logs

    # Processes (MPServer, not granian's free-threaded MTServer): prometheus_client's
    # multiprocess mode and the per-process database pools assume them.
    return MPServer(
        "oidc_provider.wsgi:app",  # the name granian shows; the app is ``worker_app``'s
        address=host, port=port, interface=Interfaces.RSGI, workers=workers, websockets=False,
        http=HTTPModes.http1,
        http1_settings=HTTP1Settings(header_read_timeout=settings.serve_request_timeout * 1000, keep_alive=True),
        ssl_cert=Path(certfile) if certfile else None,
        ssl_key=Path(keyfile) if keyfile else None,
        ssl_protocol_min=SSLProtocols.tls12,
        respawn_failed_workers=True,
        workers_kill_timeout=settings.serve_graceful_timeout,
        **logs.granian_options(settings),
    )


def serve_forever(granian_server, settings, *, on_worker_start=None) -> None:
    """Run until SIGTERM or SIGINT. Each worker, once started, runs ``on_worker_start`` and then
    builds its app with ``worker_app(settings)`` (both must pickle where workers are spawned)."""
    loader = functools.partial(_load, settings, on_worker_start)
    granian_server.serve(target_loader=loader, wrap_loader=False)


def _load(settings, on_worker_start):
    # Until granian installs the worker's own handlers (after this returns), a worker runs the
    # master's, inherited across the fork, which only set a flag in the worker's copy of the
    # server: a SIGTERM from the master while a replacement worker starts up would be lost, and
    # the master would wait OIDC_SERVE_GRACEFUL_TIMEOUT for it. A worker that serves nothing
    # yet can just die.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    if on_worker_start is not None:
        on_worker_start()
    app = worker_app(settings)
    # What the worker has built so far (the app, its routes, SQLAlchemy's and Authlib's
    # objects) lives as long as the worker: keep it out of the collector's full passes, which
    # otherwise walk it every few thousand requests.
    gc.collect()
    gc.freeze()
    return Bridge(app, threads=settings.serve_threads, timeout=settings.serve_request_timeout, lane=FastLane(app),
                  lanes=lanes(app), lane_reads=_lane_reads(app, settings))


def _lane_reads(app, settings) -> LoopReads | None:
    """How the lanes read in the event loop. SQLite: as the app does (None); a read is a read
    of a local file that never waits for a writer (WAL), shorter than handing the request to a
    thread and back (about 0.3 ms of CPU). PostgreSQL: awaited (``LoopReads``), since a
    read waits on the network, which must not stop the event loop."""
    if settings.database_url.startswith("sqlite"):
        return None
    with app.app_context():
        return LoopReads(db.engine)


class Bridge:
    """An RSGI app that runs a WSGI app: the request's body is awaited (within ``timeout`` s,
    and at most ``BODY_LIMIT`` bytes) in the event loop, then the app runs in one of
    ``threads`` threads with the whole request, and its whole response is sent. A lane of
    ``lanes`` answers first if it can, in the event loop; with ``lane_reads``, in a greenlet
    whose reads are awaited (``LoopReads``)."""

    def __init__(self, app, *, threads: int, timeout: float, lane: FastLane | None = None,
                 lanes: dict[str, Lane] | None = None, lane_reads: LoopReads | None = None):
        self.app = app
        self.timeout = timeout
        self.pool = ThreadPoolExecutor(threads, thread_name_prefix="oidc-app")
        self.lane = lane
        self.lanes = lanes or {}
        self.lane_reads = lane_reads

    async def __rsgi__(self, scope, protocol):
        if self.lane is not None:
            answer = self.lane.answer(scope)
            if answer is not None:
                return protocol.response_bytes(*answer)
        headers = scope.headers
        body = b""
        if "content-length" in headers or "transfer-encoding" in headers:
            length = headers.get("content-length", "")
            if length.isdigit() and int(length) > BODY_LIMIT:
                return _refuse(protocol, 413, "Content Too Large")
            try:
                # asyncio.timeout, not wait_for: no task of its own per request.
                async with asyncio.timeout(self.timeout):
                    if length.isdigit() and "transfer-encoding" not in headers:
                        body = await protocol()  # the whole body, its length checked above
                    else:
                        body = await _read(protocol)
            except TimeoutError:
                return _refuse(protocol, 408, "Request Timeout")
            except _TooLarge:
                return _refuse(protocol, 413, "Content Too Large")
            except Exception:  # noqa: BLE001 (granian's ProtocolClosed: the client went away)
                return None
        environ = _environ(scope, body)
        lane = self.lanes.get(scope.path)
        if lane is not None:
            if self.lane_reads is None:
                answer = lane.answer(environ, body)
            else:
                answer = await self.lane_reads.run(lane.answer, environ, body)
            if answer is not None:
                return protocol.response_bytes(*answer)
        status, response_headers, content = await asyncio.get_running_loop().run_in_executor(
            self.pool, self._call, environ)
        protocol.response_bytes(status, response_headers, content)

    def _call(self, environ) -> tuple[int, list, bytes]:
        started = []
        written = []

        def start_response(status, headers, exc_info=None):
            if exc_info and started:
                raise exc_info[1].with_traceback(exc_info[2])
            started[:] = [status, headers]
            return written.append

        result = self.app(environ, start_response)
        try:
            content = b"".join([*written, *result])
        finally:
            if hasattr(result, "close"):
                result.close()
        status, headers = started
        return int(status.split(" ", 1)[0]), headers, content


class _TooLarge(Exception):  # noqa: N818
    pass


async def _read(protocol) -> bytes:
    chunks = []
    size = 0
    async for chunk in protocol:
        size += len(chunk)
        if size > BODY_LIMIT:
            raise _TooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def _refuse(protocol, status: int, reason: str) -> None:
    # RFC 9110 §15.5.9: with 408, the server "SHOULD send the "close" connection option".
    protocol.response_bytes(status, [("content-type", "text/plain; charset=utf-8"), _CLOSE],
                            reason.encode() + b"\n")


def _environ(scope, body: bytes) -> dict:
    """PEP 3333's environ for an RSGI request: the path as latin-1 code points of its bytes."""
    server_host, _, server_port = scope.server.rpartition(":")
    client_host = scope.client.rpartition(":")[0] if ":" in scope.client else scope.client
    environ = {
        "REQUEST_METHOD": scope.method,
        "SCRIPT_NAME": "",
        "PATH_INFO": scope.path.encode("utf-8", "surrogateescape").decode("latin-1"),
        "QUERY_STRING": scope.query_string,
        "SERVER_NAME": server_host.strip("[]"),
        "SERVER_PORT": server_port,
        "SERVER_PROTOCOL": "HTTP/1.0" if scope.http_version in ("1", "1.0") else f"HTTP/{scope.http_version}",
        "REMOTE_ADDR": client_host.strip("[]"),
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": scope.scheme,
        "wsgi.input": io.BytesIO(body),
        "wsgi.input_terminated": True,
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }
    for name, value in scope.headers.items():
        if name == "content-type":
            environ["CONTENT_TYPE"] = value
        elif name == "content-length":
            environ["CONTENT_LENGTH"] = value
        else:
            key = "HTTP_" + name.upper().replace("-", "_")
            if key in environ:  # a repeated field (RFC 9110 §5.3); cookies are joined with "; "
                value = environ[key] + ("; " if key == "HTTP_COOKIE" else ", ") + value
            environ[key] = value
    return environ
