"""Through granian: a plain ``client_credentials`` request (RFC 6749 §4.4.2), answered by the
token lane (serving/lanes.py), carries what the app answers for the same request; the app
answers one the lane leaves to it (an unknown parameter, which RFC 6749 §3.2 has ignored), and
every error."""

from __future__ import annotations

import pytest
import requests

from ..spec._clients import claims_of, header_of
from .conftest import TIMEOUT

pytestmark = pytest.mark.e2e

PER_RESPONSE = {"x-request-id", "content-length", "date"}
PER_TOKEN = {"jti", "iat", "exp"}


def test_rfc6749_4_4_3_the_lane_and_the_app_answer_alike_through_granian(live_server):
    service = live_server.clients["service"]
    auth = (service["client_id"], service["client_secret"])
    url = live_server.issuer + "/token"
    with requests.Session() as http:  # one kept-alive connection, as a service holds
        answers = [http.post(url, data={"grant_type": "client_credentials"}, auth=auth, timeout=TIMEOUT)
                   for _ in range(5)]
        through_app = http.post(url, data={"grant_type": "client_credentials", "x-unused": "1"}, auth=auth,
                                timeout=TIMEOUT)
        refused = http.post(url, data={"grant_type": "client_credentials"}, auth=(auth[0], auth[1] + "x"),
                            timeout=TIMEOUT)
    for answer in answers:
        assert answer.status_code == through_app.status_code == 200, answer.text
        assert {k.lower(): v for k, v in answer.headers.items() if k.lower() not in PER_RESPONSE} == \
            {k.lower(): v for k, v in through_app.headers.items() if k.lower() not in PER_RESPONSE}
        body, app_body = answer.json(), through_app.json()
        assert list(body) == list(app_body)
        assert {k: v for k, v in body.items() if k != "access_token"} == \
            {k: v for k, v in app_body.items() if k != "access_token"}
        assert header_of(body["access_token"]) == header_of(app_body["access_token"])
        assert {k: v for k, v in claims_of(body["access_token"]).items() if k not in PER_TOKEN} == \
            {k: v for k, v in claims_of(app_body["access_token"]).items() if k not in PER_TOKEN}
    assert len({a.json()["access_token"] for a in answers}) == 5
    assert len({a.headers["X-Request-Id"] for a in answers}) == 5
    # RFC 6749 §5.2: a wrong secret is the app's invalid_client, with its challenge.
    assert refused.status_code == 401 and refused.json()["error"] == "invalid_client"
    assert "WWW-Authenticate" in refused.headers
    # The lane's tokens are the provider's: introspection by their own client says active.
    introspected = requests.post(live_server.issuer + "/introspect", data={"token": answers[0].json()["access_token"]},
                                 auth=auth, timeout=TIMEOUT)
    assert introspected.json()["active"] is True
