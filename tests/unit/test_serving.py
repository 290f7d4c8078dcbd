"""``serve``'s connection handling (oidc_provider/serving.py) in the parts that need no server:
the settings behind it, and when the bytes received make a whole request (RFC 9112 §6.3: a
request's body is as long as its Content-Length, or chunked, or empty). The behaviour against
real clients is in tests/e2e/test_serving.py."""

from __future__ import annotations

import os

import pytest

from oidc_provider.serving.gthread import BODY_LIMIT, HEAD_LIMIT, _whole_request, gunicorn_options
from oidc_provider.settings import Settings, SettingsError

GOOD = {"OIDC_ISSUER": "https://id.example.com", "OIDC_SECRET_KEY": "k" * 32,
        "OIDC_DATABASE_URL": "sqlite:///tmp/x.db"}


def _error(**env) -> str:
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({**GOOD, **env}).validate()
    return str(caught.value)


@pytest.mark.parametrize("name", ["OIDC_SERVE_REQUEST_TIMEOUT", "OIDC_SERVE_GRACEFUL_TIMEOUT"])
def test_serve_timeouts_must_be_positive(name):
    assert f"{name} must be positive" in _error(**{name: "0"})


@pytest.mark.parametrize("threads", ["0", "65"])
def test_serve_threads_between_1_and_64(threads):
    assert "OIDC_SERVE_THREADS must be between 1 and 64" in _error(OIDC_SERVE_THREADS=threads)


def test_hsts_max_age_zero_is_allowed_negative_is_not():
    assert Settings.from_env({**GOOD, "OIDC_HSTS_MAX_AGE": "0"}).validate().hsts_max_age == 0
    assert "OIDC_HSTS_MAX_AGE must be 0 or more" in _error(OIDC_HSTS_MAX_AGE="-1")


def test_gunicorn_gets_the_threaded_worker_with_the_settings():
    settings = Settings.from_env({**GOOD, "OIDC_SERVE_REQUEST_TIMEOUT": "7", "OIDC_SERVE_THREADS": "3",
                                  "OIDC_SERVE_GRACEFUL_TIMEOUT": "12"})
    options = gunicorn_options(settings)
    assert options["worker_class"].request_timeout == 7.0
    assert (options["threads"], options["graceful_timeout"]) == (3, 12)
    assert options["keepalive"] > 0


HEAD = b"POST /token HTTP/1.1\r\nHost: id.example.com\r\n"


@pytest.mark.parametrize(("received", "whole"), [
    (b"", False),
    (b"GET / HTTP/1.1\r\nHost: x\r\n", False),  # head not finished
    (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", True),  # no body
    (b"GET / HTTP/1.1\nHost: x\n\n", True),  # bare LF line ends: the parser judges them
    (HEAD + b"Content-Length: 5\r\n\r\nabc", False),
    (HEAD + b"Content-Length: 5\r\n\r\nabcde", True),
    (HEAD + b"content-length:5\r\n\r\nabcde", True),  # field names are case-insensitive
    (HEAD + b"Content-Length: 5\r\n\r\nabcdeGET / HTTP/1.1\r\n", True),  # the next request pipelined
    (HEAD + b"Transfer-Encoding: chunked\r\n\r\n", True),  # chunks are read under the deadline
    (HEAD + b"Content-Length: 10\r\nExpect: 100-continue\r\n\r\n", True),  # waits for 100 Continue
    (HEAD + b"Content-Length: %d\r\n\r\n" % (BODY_LIMIT + 1), True),  # refused with 413 unread
    (b"GET /" + b"a" * (HEAD_LIMIT + 1), True),  # refused by gunicorn's parser
])
def test_whole_request(received, whole):
    assert _whole_request(bytearray(received)) is whole


def test_forget_dead_workers_drops_the_live_gauges_of_gone_processes_only(tmp_path):
    """granian has no hook for a worker's exit: each new worker drops what dead ones left in the
    metrics directory (prometheus_client's ``mark_process_dead``: live gauges go, counters stay,
    so that no counter goes down when a worker is replaced)."""
    import subprocess
    import sys

    from oidc_provider.metrics import forget_dead_workers

    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True).stdout.strip()
    alive = str(os.getpid())
    names = [f"gauge_livesum_{gone}.db", f"gauge_liveall_{gone}.db", f"counter_{gone}.db",
             f"gauge_livesum_{alive}.db", f"counter_{alive}.db"]
    for name in names:
        (tmp_path / name).write_bytes(b"")
    forget_dead_workers(str(tmp_path))
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [f"counter_{gone}.db", f"gauge_livesum_{alive}.db", f"counter_{alive}.db"])
