"""Through granian: discovery (OIDC Discovery 1.0 §4) and the JWKS (RFC 7517 §5) answered by the
fast lane (serving/fast_lane.py) carry what the app answers for the same document; a query
string sends the request through the app, which ignores it."""

from __future__ import annotations

import pytest
import requests

from .conftest import TIMEOUT

pytestmark = pytest.mark.e2e

PER_REQUEST = {"date", "x-request-id"}


@pytest.mark.parametrize("path", ["/.well-known/openid-configuration", "/.well-known/oauth-authorization-server",
                                  "/jwks.json"])
def test_rfc8414_3_the_lane_and_the_app_answer_alike_through_granian(live_server, path):
    url = live_server.issuer + path
    with requests.Session() as http:  # one kept-alive connection, as a relying party holds
        answers = [http.get(url, timeout=TIMEOUT) for _ in range(3)]
        through_app = http.get(url + "?via=app", timeout=TIMEOUT)
    for answer in answers:
        assert answer.status_code == through_app.status_code == 200
        assert answer.content == through_app.content
        assert {k.lower(): v for k, v in answer.headers.items() if k.lower() not in PER_REQUEST} == \
            {k.lower(): v for k, v in through_app.headers.items() if k.lower() not in PER_REQUEST}
    assert len({answer.headers["X-Request-Id"] for answer in answers}) == 3
    revalidated = requests.get(url, headers={"If-None-Match": answers[0].headers["ETag"]}, timeout=TIMEOUT)
    assert revalidated.status_code == 304  # RFC 9110 §13.1.2, by the app
