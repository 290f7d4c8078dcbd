"""Races around consent and refresh tokens, fired at two real instances on one database
(PostgreSQL in the PostgreSQL pass; SQLite otherwise):

- RFC 6749 §10.5, §6 and RFC 9700 §4.14: withdrawing consent while refreshes and a code
  redemption are in flight on both instances leaves no live token, round after round.
- Two "Allow" for one request at once, one on each instance: no 5xx, one consent.
- RFC 9700 §4.14.2: a refresh retried (on the other instance, or at the same moment) within
  the grace window gets the same successor back instead of revoking the family.
"""

from __future__ import annotations

import functools
import re
import secrets
import threading
from html import unescape
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import requests
from sqlalchemy import create_engine, text

from ..helpers import pkce_pair
from .conftest import REDIRECT_URI, TIMEOUT, LiveBrowser, _hidden_fields

ROUNDS = 10
CHAINS = 3


def _client(pair, name: str) -> dict:
    return {**pair.first.cli("client", "create", "--name", name, "--redirect-uri", REDIRECT_URI,
                             "--grant", "refresh_token"), "name": name}


def _query(client: dict, challenge: str, **extra) -> str:
    return urlencode({"response_type": "code", "client_id": client["client_id"], "redirect_uri": REDIRECT_URI,
                      "scope": "openid", "state": secrets.token_urlsafe(6), "code_challenge": challenge,
                      "code_challenge_method": "S256", **extra})


def _code(pair, browser: LiveBrowser, client: dict) -> tuple[str, str]:
    """Sign in (and allow) on the first instance; return (code, verifier)."""
    verifier, challenge = pkce_pair()
    callback = browser.authorize(f"{pair.first.url}/authorize?{_query(client, challenge)}")
    return parse_qs(urlsplit(callback).query)["code"][0], verifier


def _redeem(url: str, client: dict, code: str, verifier: str) -> requests.Response:
    return requests.post(f"{url}/token", data={"grant_type": "authorization_code", "code": code,
                                               "redirect_uri": REDIRECT_URI, "code_verifier": verifier},
                         auth=(client["client_id"], client["client_secret"]), timeout=TIMEOUT)


def _refresh(url: str, client: dict, token: str) -> requests.Response:
    return requests.post(f"{url}/token", data={"grant_type": "refresh_token", "refresh_token": token},
                         auth=(client["client_id"], client["client_secret"]), timeout=TIMEOUT)


def _withdrawal(pair, browser: LiveBrowser, client: dict) -> tuple[str, dict]:
    """The account page's form that withdraws the consent to ``client``: (URL on the second
    instance, fields)."""
    page = browser.http.get(f"{pair.first.url}/account", timeout=TIMEOUT)
    pattern = (r'<li>' + re.escape(client["name"]) +
               r':[^<]*<span[^>]*>[^<]*</span>\s*<form[^>]*action="([^"]*/account/consents/\d+/revoke)"[^>]*>(.*?)</form>')
    forms = re.findall(pattern, page.text, re.S)
    assert len(forms) == 1, forms
    action, inner = forms[0]
    return urljoin(pair.second.url + "/", unescape(action)), _hidden_fields(inner)


def _at_once(*calls) -> list:
    """Run the calls in threads released together; their results, in order."""
    start = threading.Barrier(len(calls))
    results = [None] * len(calls)

    def run(index, call):
        start.wait()
        results[index] = call()

    threads = [threading.Thread(target=run, args=(i, call)) for i, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return results


def _db(pair):
    return create_engine(pair.first.db_url)


def _live_rows(engine, client_id: str) -> int:
    """Live refresh tokens (access tokens are not stored: each one handed out is checked at
    userinfo below)."""
    with engine.connect() as conn:
        return conn.execute(text("SELECT count(*) FROM refresh_token WHERE client_id = :c AND revoked_at IS NULL"),
                            {"c": client_id}).scalar()


def _chain(pair, client, tokens: dict, offset: int) -> list[requests.Response]:
    """Refresh along one chain, alternating instances, until refused (at most 8 times)."""
    answers, token = [], tokens["refresh_token"]
    for step in range(8):
        answers.append(_refresh(pair.urls[(offset + step) % 2], client, token))
        if answers[-1].status_code != 200:
            break
        token = answers[-1].json()["refresh_token"]
    return answers


def _withdrawal_round(pair, browser: LiveBrowser, client: dict, engine) -> None:
    chains = []
    for _ in range(CHAINS):
        answer = _redeem(pair.second.url, client, *_code(pair, browser, client))
        assert answer.status_code == 200, answer.text
        chains.append(answer.json())
    pending = _code(pair, browser, client)
    action, fields = _withdrawal(pair, browser, client)
    *chained, redeemed, withdrawn = _at_once(
        *(functools.partial(_chain, pair, client, tokens, i) for i, tokens in enumerate(chains)),
        functools.partial(_redeem, pair.first.url, client, *pending),
        functools.partial(browser.http.post, action, data=fields, allow_redirects=False, timeout=TIMEOUT))
    answers = [answer for chain in chained for answer in chain] + [redeemed]
    assert withdrawn.status_code == 302
    assert all(answer.status_code in (200, 400) for answer in answers), [a.status_code for a in answers]
    assert _live_rows(engine, client["client_id"]) == 0
    handed_out = chains + [answer.json() for answer in answers if answer.status_code == 200]
    for tokens in handed_out:
        info = requests.get(f"{pair.second.url}/userinfo", timeout=TIMEOUT,
                            headers={"Authorization": f"Bearer {tokens['access_token']}"})
        assert info.status_code == 401
        if "refresh_token" in tokens:
            again = _refresh(pair.first.url, client, tokens["refresh_token"])
            assert (again.status_code, again.json()["error"]) == (400, "invalid_grant")


def test_rfc6749_10_5_withdrawal_racing_refreshes_and_a_redemption_leaves_no_live_token(two_instances):
    """RFC 6749 §10.5 / §6, RFC 9700 §4.14: in every round, three refresh chains (alternating
    instances) and the redemption of a code issued before run while the person withdraws
    consent on the second instance. Afterwards no access or refresh token of the app is live
    in the database, every token handed out is refused, and nothing answered 5xx."""
    pair = two_instances
    client = _client(pair, "Race withdrawal")
    browser = LiveBrowser(pair.live)
    engine = _db(pair)
    try:
        for _ in range(ROUNDS):
            _withdrawal_round(pair, browser, client, engine)
    finally:
        engine.dispose()


def _consent_page(pair, browser: LiveBrowser, client: dict) -> tuple[str, dict]:
    """Start an authorization on the first instance and stop at the consent page."""
    _, challenge = pkce_pair()
    response = browser.http.get(f"{pair.first.url}/authorize?{_query(client, challenge)}",
                                allow_redirects=False, timeout=TIMEOUT)
    for _ in range(10):
        if not response.is_redirect:
            break
        response = browser.http.get(urljoin(response.url, response.headers["Location"]),
                                    allow_redirects=False, timeout=TIMEOUT)
    assert 'name="decision"' in response.text, response.text[:300]
    action = re.search(r'<form[^>]*action="([^"]*)"', response.text).group(1)
    return urlsplit(urljoin(response.url, unescape(action))).path, {**_hidden_fields(response.text),
                                                                    "decision": "allow"}


def _clone(browser: LiveBrowser) -> requests.Session:
    session = requests.Session()
    session.cookies.update(browser.http.cookies)
    return session


def test_double_allow_on_two_instances_gives_no_5xx_and_one_consent(two_instances):
    """Two "Allow" for one request at the same moment, one on each instance (a double click
    behind a load balancer), when no consent exists yet: both answer without a 5xx (the
    consent is an upsert, not an insert that one of them loses) and one consent is stored."""
    pair = two_instances
    client = _client(pair, "Race allow")
    browser = LiveBrowser(pair.live)
    _code(pair, browser, client)  # signs in and allows once, so the account page lists it
    engine = _db(pair)
    try:
        for _ in range(ROUNDS):
            action, fields = _withdrawal(pair, browser, client)
            assert browser.http.post(action, data=fields, allow_redirects=False, timeout=TIMEOUT).status_code == 302
            path, form = _consent_page(pair, browser, client)
            answers = _at_once(*(functools.partial(_clone(browser).post, url + path, data=form,
                                                   allow_redirects=False, timeout=TIMEOUT) for url in pair.urls))
            assert [answer.status_code for answer in answers] == [302, 302]
            with engine.connect() as conn:
                assert conn.execute(text("SELECT count(*) FROM consent JOIN client ON client.id = consent.client_id "
                                         "WHERE client.client_id = :c"), {"c": client["client_id"]}).scalar() == 1
    finally:
        engine.dispose()


def test_rfc9700_4_14_2_a_retried_refresh_within_the_window_gets_the_same_successor(two_instances):
    """RFC 9700 §4.14.2's bounded grace, across instances: the same refresh token sent four
    times at once (two per instance), then once more on the other instance, is answered every
    time with the same successor; the successor then works, and after that the old token is
    reuse and revokes the family."""
    pair = two_instances
    client = _client(pair, "Race retry")
    browser = LiveBrowser(pair.live)
    for _ in range(ROUNDS // 2):
        first = _redeem(pair.first.url, client, *_code(pair, browser, client)).json()
        answers = _at_once(*(functools.partial(_refresh, url, client, first["refresh_token"])
                             for url in pair.urls * 2))
        assert [a.status_code for a in answers] == [200] * 4, [a.text for a in answers]
        successors = {a.json()["refresh_token"] for a in answers}
        assert len(successors) == 1
        late = _refresh(pair.second.url, client, first["refresh_token"])
        assert late.status_code == 200 and late.json()["refresh_token"] in successors
        onward = _refresh(pair.first.url, client, late.json()["refresh_token"])
        assert onward.status_code == 200, onward.text
        reuse = _refresh(pair.second.url, client, first["refresh_token"])
        assert (reuse.status_code, reuse.json()["error"]) == (400, "invalid_grant")
        revoked = _refresh(pair.first.url, client, onward.json()["refresh_token"])
        assert (revoked.status_code, revoked.json()["error"]) == (400, "invalid_grant")


def _silent_code(url: str, session: requests.Session, client: dict) -> tuple[requests.Response, str]:
    """An app's silent authorization (``prompt=none``) in the person's browser, on ``url``:
    (the answer, the PKCE verifier)."""
    verifier, challenge = pkce_pair()
    return session.get(f"{url}/authorize?{_query(client, challenge, prompt='none')}", allow_redirects=False,
                       timeout=TIMEOUT), verifier


def test_rfc6749_10_5_silent_authorizations_racing_the_withdrawal_yield_no_redeemable_code(two_instances):
    """RFC 6749 §10.5: codes issued while the person withdraws consent (silent authorizations
    on both instances) are issued under the old generation or not at all (``consent_required``):
    none of them redeems afterwards, and nothing answers 5xx."""
    pair = two_instances
    client = _client(pair, "Race silent")
    browser = LiveBrowser(pair.live)
    codes_refused = 0
    for _ in range(ROUNDS):
        _code(pair, browser, client)  # signs in (and allows)
        action, fields = _withdrawal(pair, browser, client)
        answers = _at_once(
            *(functools.partial(_silent_code, url, _clone(browser), client) for url in pair.urls * 2),
            functools.partial(browser.http.post, action, data=fields, allow_redirects=False, timeout=TIMEOUT))
        *silent, withdrawn = answers
        assert withdrawn.status_code == 302
        assert all(answer.status_code == 302 for answer, _ in silent), [a.status_code for a, _ in silent]
        for answer, verifier in silent:
            query = parse_qs(urlsplit(answer.headers["Location"]).query)
            if "code" in query:
                refused = _redeem(pair.second.url, client, query["code"][0], verifier)
                assert (refused.status_code, refused.json()["error"]) == (400, "invalid_grant")
                codes_refused += 1
            else:
                assert query["error"] == ["consent_required"], query
    assert codes_refused > 0  # the race did hand out codes, and each was refused
