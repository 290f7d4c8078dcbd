"""How ``oidc-provider serve --server gunicorn`` runs gunicorn: a threaded worker that gives no thread to an idle
connection, gives a request a bounded time to arrive, and drains what it accepted on SIGTERM.

gunicorn's ``gthread`` worker does most of it: kept-alive and idle connections wait in one
selector, not in a thread, and a stopping worker finishes what it has accepted within
``graceful_timeout``. What it lacks, this subclass adds:

- **A request deadline.** Once a connection has sent its first byte, gthread reads the headers
  and the application reads the body with blocking reads and no time limit, so a client that
  trickles a byte every few seconds holds a thread for as long as it likes (the "slow loris").
  Here every read of a request (TLS handshake, request line, headers, body) must be done within
  ``OIDC_SERVE_REQUEST_TIMEOUT`` seconds of its start; past it the client gets
  ``408 Request Timeout`` and the connection is closed (RFC 9110 §15.5.9: the server "SHOULD send
  the close connection option"). The body is read whole before the application runs, so the
  deadline bounds it too and the application never waits on a client.
- **No thread for a connection that has sent nothing**: gthread lets a new connection wait up to
  5 s in a thread for its first byte; here it goes straight to the selector.
- **Queued connections are served on SIGTERM.** gthread stops accepting, and the listening
  socket's backlog (connections the kernel has completed but no worker has accepted) is reset
  when the last copy of the socket closes. Here a stopping worker first accepts what is queued,
  then closes its listening sockets so that new connections are refused at once.
"""

from __future__ import annotations

import io
import re
import select
import ssl
import time

from gunicorn import http, sock, util
from gunicorn.workers.gthread import _DEFER, TConn, ThreadWorker

#: Seconds a kept-alive connection may stay idle between requests (gunicorn's ``keepalive``);
#: idle connections cost a file descriptor, not a thread.
KEEPALIVE = 5
#: Largest request body read before the application runs; larger ones get 413. The application
#: itself refuses bodies over 64 KiB (``MAX_CONTENT_LENGTH``) with its own 413.
BODY_LIMIT = 1024 * 1024
#: Request line and headers longer than this go to gunicorn's parser, which refuses them.
HEAD_LIMIT = 64 * 1024
_HEAD_END = re.compile(rb"\r?\n\r?\n")
_CONTENT_LENGTH = re.compile(rb"^content-length[ \t]*:[ \t]*([0-9]+)[ \t]*\r?$", re.IGNORECASE | re.MULTILINE)
_TRANSFER_ENCODING = re.compile(rb"^transfer-encoding[ \t]*:", re.IGNORECASE | re.MULTILINE)
_EXPECT_CONTINUE = re.compile(rb"^expect[ \t]*:[ \t]*100-continue", re.IGNORECASE | re.MULTILINE)


class RequestTimeout(Exception):  # noqa: N818 (the HTTP status's name)
    """The client did not send its request within the deadline. Not an OSError, so that gunicorn
    hands it to ``handle_error`` (which answers it) instead of logging a socket error."""

    def __init__(self, *, answer: bool = True):
        super().__init__("request not received in time")
        self.answer = answer  # False during the TLS handshake: there is no channel to answer on


class RequestTooLarge(Exception):  # noqa: N818
    """The request body is over BODY_LIMIT."""


class _Deadline:
    """The connection as the request parser reads it: ``recv`` gives up at ``conn.deadline``
    (None: no deadline, as while the application runs). Everything else is the socket's."""

    def __init__(self, conn: Conn, sock):
        self._conn = conn
        self._sock = sock

    def recv(self, size: int) -> bytes:
        deadline = self._conn.deadline
        if deadline is None:
            return self._sock.recv(size)
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise RequestTimeout
        prior = self._sock.gettimeout()
        self._sock.settimeout(remaining if prior is None else min(prior, remaining))
        try:
            return self._sock.recv(size)
        except TimeoutError:
            if time.monotonic() >= deadline:
                raise RequestTimeout from None
            raise
        finally:
            self._sock.settimeout(prior)

    def __getattr__(self, name):
        return getattr(self._sock, name)


class Conn(TConn):
    """gthread's connection, plus what has arrived of the next request (``received``), when its
    first byte came (``deadline`` is then set), and a parser that reads through a ``_Deadline``.
    TLS is set up by the worker without blocking (``Worker._handshake``); HTTP/1.1 only."""

    deadline: float | None = None
    handshaken = False  # TLS

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.received = bytearray()
        self.closed_by_client = False

    def init(self):
        if self.initialized:
            return
        self.initialized = True
        self.sock.setblocking(True)
        self.parser = http.get_parser(self.cfg, _Deadline(self, self.sock), self.client)


class Worker(ThreadWorker):
    """gthread with a request deadline, whole requests read before a thread runs them, and a
    backlog drained on SIGTERM (module docstring). ``request_timeout`` is set on a subclass
    made by ``worker_class``."""

    request_timeout: float = 10.0

    def accept(self, listener):
        """As gthread's, with our connection class."""
        try:
            client, address = listener.accept()
        except (BlockingIOError, InterruptedError, ConnectionAbortedError):
            return
        self.nr_conns += 1
        client.setblocking(True)
        self.enqueue_req(Conn(self.cfg, client, address, listener.getsockname()))

    def handle(self, conn):
        """Runs in a thread whenever the connection has something to read: take what has
        arrived without waiting, and hand the connection back to the selector (``_DEFER``)
        until a whole request is there. A stopping worker reads the rest with blocking reads,
        still bounded by the deadline."""
        try:
            complete = self._gather(conn)
        except RequestTimeout as exc:
            self.handle_error(None, conn.sock, conn.client, exc)
            return False
        except (OSError, ssl.SSLError) as exc:
            self.log.debug("Connection dropped while a request arrived: %s", exc)
            return False
        if conn.closed_by_client:
            return False
        if not complete:
            if self.alive:
                return _DEFER
            conn.deadline = conn.deadline or time.monotonic() + self.request_timeout
        conn.init()
        if conn.received:
            conn.parser.unreader.unread(bytes(conn.received))
            conn.received.clear()
        return super().handle(conn)

    def _gather(self, conn) -> bool:
        """Read what the client has sent, without blocking; True once a whole request (or
        something gunicorn's parser must judge) has arrived."""
        if self.cfg.is_ssl and not isinstance(conn.sock, ssl.SSLSocket):
            conn.deadline = time.monotonic() + self.request_timeout  # the handshake's
            conn.sock = sock.ssl_context(self.cfg).wrap_socket(
                conn.sock, server_side=True, do_handshake_on_connect=False,
                suppress_ragged_eofs=self.cfg.suppress_ragged_eofs)
        if self.cfg.is_ssl and not conn.handshaken:
            if not self._handshake(conn):
                return False
        if conn.parser is not None:
            # Bytes a previous request's reads took past its end: the start of this one.
            conn.received += conn.parser.unreader.take_buffered()
        conn.sock.setblocking(False)
        try:
            while len(conn.received) <= HEAD_LIMIT + BODY_LIMIT:
                try:
                    data = conn.sock.recv(65536)
                except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
                    break
                if not data:
                    conn.closed_by_client = not conn.received
                    return True  # the parser reports a request cut short
                conn.received += data
        finally:
            conn.sock.setblocking(True)
        if not conn.received:
            return False  # woken without data (a kept-alive connection probed, say)
        if conn.deadline is None:
            conn.deadline = time.monotonic() + self.request_timeout
        if _whole_request(conn.received):
            return True
        if time.monotonic() >= conn.deadline:
            raise RequestTimeout
        return False

    def _handshake(self, conn) -> bool:
        conn.sock.setblocking(False)
        try:
            conn.sock.do_handshake()
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
            if time.monotonic() >= conn.deadline:
                raise RequestTimeout(answer=False) from None
            return False
        finally:
            conn.sock.setblocking(True)
        conn.handshaken = True
        conn.deadline = None  # the request's own starts with its first byte
        return True

    def handle_request(self, req, conn):
        """Read the body whole while the deadline holds, then run the application without it."""
        if req.body is not None:
            if any(name == "CONTENT-LENGTH" and int(value) > BODY_LIMIT for name, value in req.headers):
                raise RequestTooLarge  # gunicorn has checked that the value is digits
            if req._expected_100_continue:
                # RFC 9110 §10.1.1: the client waits for this before sending the body.
                conn.sock.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
                req._expected_100_continue = False
            data = req.body.read(BODY_LIMIT + 1)
            if len(data) > BODY_LIMIT:
                raise RequestTooLarge
            req.body = io.BytesIO(data)
        conn.deadline = None
        return super().handle_request(req, conn)

    def handle_error(self, req, client, addr, exc):
        if isinstance(exc, RequestTimeout):
            self.log.info("Request from %s not received within %s s: closed",
                          (addr or ("",))[0], self.request_timeout)
            if exc.answer:
                _answer(client, 408, "Request Timeout")
            return
        if isinstance(exc, RequestTooLarge):
            _answer(client, 413, "Content Too Large")
            return
        super().handle_error(req, client, addr, exc)

    def set_accept_enabled(self, enabled):
        if not enabled and not self.alive and self._accepting:
            self._take_queued()
        super().set_accept_enabled(enabled)
        if not enabled and not self.alive:
            # Nothing more will be accepted: close this process's copies of the listening
            # sockets now, so that once every process has, new connections are refused instead
            # of queueing for a worker that will never take them.
            for listener in self.sockets:
                listener.close()

    def _take_queued(self):
        """Accept every connection already queued on the listening sockets (they were made
        before the stop, and would be reset when the sockets close)."""
        for listener in self.sockets:
            while select.select([listener], [], [], 0)[0]:
                before = self.nr_conns
                self.accept(listener)
                if self.nr_conns == before:
                    break  # another worker took it


def _whole_request(received: bytearray) -> bool:
    """Whether ``received`` holds a request's head and, per its Content-Length, its body. A
    head too long, a chunked body or a body over BODY_LIMIT count as whole: gunicorn's parser
    or ``handle_request`` refuses them, or reads the chunks under the deadline; so does a body
    the client sends only after ``100 Continue`` (RFC 9110 §10.1.1), which ``handle_request``
    answers."""
    end = _HEAD_END.search(received, 0, HEAD_LIMIT)
    if end is None:
        return len(received) > HEAD_LIMIT
    head = bytes(received[:end.start()])
    if _TRANSFER_ENCODING.search(head) or _EXPECT_CONTINUE.search(head):
        return True
    lengths = _CONTENT_LENGTH.findall(head)
    length = int(lengths[0]) if lengths else 0
    return length > BODY_LIMIT or len(received) - end.end() >= length


def _answer(client, status: int, reason: str) -> None:
    try:
        util.write_error(client, status, reason, "")
    except OSError:
        pass


def worker_class(request_timeout: float) -> type[Worker]:
    """The worker class for gunicorn's ``worker_class`` setting, with this deadline."""
    return type("Worker", (Worker,), {"request_timeout": float(request_timeout)})


def gunicorn_options(settings) -> dict:
    """gunicorn settings for ``serve`` that decide how connections are served."""
    return {
        "worker_class": worker_class(settings.serve_request_timeout),
        "threads": settings.serve_threads,
        "keepalive": KEEPALIVE,
        "graceful_timeout": settings.serve_graceful_timeout,
    }
