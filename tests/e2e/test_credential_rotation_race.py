"""One live credential without a row lock (issue 13; DESIGN "System accounts": exactly one live
credential at a time), against two real ``serve`` processes on one database.

A client_credentials token is not stored: it carries the generation of the credential it was
issued with, read in the same query as the credential. A rotation racing 50 token requests on
both instances therefore cannot leave a live token behind that was obtained with the replaced
secret: every such token is refused afterwards by introspection (RFC 7662 §2.2) and userinfo
(RFC 6750 §3.1 ``invalid_token``), on either instance, and the new secret's tokens work.
"""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor

import requests

from .conftest import TIMEOUT

REQUESTS = 50


def _token(url: str, client_id: str, secret: str) -> tuple[int, str | None]:
    answer = requests.post(f"{url}/token", data={"grant_type": "client_credentials"},
                           auth=(client_id, secret), timeout=TIMEOUT)
    return answer.status_code, answer.json().get("access_token")


def test_rfc6749_10_a_rotation_racing_50_token_requests_leaves_no_live_token_of_the_old_secret(two_instances):
    """Token requests with the old secret stream at both instances (at least 50, from before
    the rotation starts until after it has committed) while ``service rotate`` runs."""
    pair = two_instances
    service = pair.first.create_service("racer")
    client_id, old_secret = service["client_id"], service["client_secret"]
    rotation = pair.second.popen_cli("service", "rotate", "racer", "--json")
    done = threading.Event()
    results: list[tuple[int, str | None]] = []
    lock = threading.Lock()

    def stream(index: int) -> None:
        while not done.is_set() or len(results) < REQUESTS:
            answer = _token(pair.urls[index % 2], client_id, old_secret)
            with lock:
                results.append(answer)

    with ThreadPoolExecutor(max_workers=8) as pool:
        workers = [pool.submit(stream, i) for i in range(8)]
        out, err = rotation.communicate(timeout=120)
        done.set()
        for worker in workers:
            worker.result()
    assert rotation.returncode == 0, err
    new_secret = json.loads(out)["client_secret"]
    statuses = {status for status, _ in results}
    assert statuses <= {200, 401}, statuses  # after the rotation: invalid_client
    issued = [token for status, token in results if status == 200]
    assert len(results) >= REQUESTS and issued and 401 in statuses
    for index, token in enumerate(issued):
        url = pair.urls[index % 2]
        seen = requests.post(f"{url}/introspect", data={"token": token}, auth=(client_id, new_secret),
                             timeout=TIMEOUT)
        assert seen.status_code == 200 and seen.json() == {"active": False}, seen.text
        # A live service token would be 403 insufficient_scope (no 'openid'); a revoked one is 401.
        userinfo = requests.get(f"{pair.urls[(index + 1) % 2]}/userinfo",
                                headers={"Authorization": f"Bearer {token}"}, timeout=TIMEOUT)
        assert userinfo.status_code == 401 and 'error="invalid_token"' in userinfo.headers["WWW-Authenticate"]

    status, fresh = _token(pair.first.url, client_id, new_secret)
    assert status == 200
    for url in pair.urls:
        seen = requests.post(f"{url}/introspect", data={"token": fresh}, auth=(client_id, new_secret),
                             timeout=TIMEOUT)
        assert seen.json()["active"] is True
        assert requests.get(f"{url}/userinfo", headers={"Authorization": f"Bearer {fresh}"},
                            timeout=TIMEOUT).status_code == 403
    assert _token(pair.second.url, client_id, old_secret)[0] == 401
