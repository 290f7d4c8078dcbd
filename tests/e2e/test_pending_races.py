"""Races in one browser against two real instances on one database (issue 12, item 6): several
``/authorize`` at once never overwrite each other's pending request, and signing out while
other tabs load never gives them a 5xx. Run in the PostgreSQL pass with two instances, where
the attack run found them (4-6 of 8 sign-ins ended in "request expired"; StaleDataError 500s)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import requests

from ..helpers import pkce_pair
from .conftest import TIMEOUT, LiveBrowser, _form_action, _hidden_fields

TABS = 8


def _query(live, client_id: str, state: str, **extra) -> str:
    _, challenge = pkce_pair()
    return urlencode({"response_type": "code", "client_id": client_id, "redirect_uri": live.redirect_uri,
                      "scope": "openid", "state": state, "code_challenge": challenge,
                      "code_challenge_method": "S256", **extra})


class Tab:
    """One tab of a browser whose cookie jar (``http``) is shared with the other tabs; its
    requests go to ``base``, one of the two instances."""

    def __init__(self, pair, http: requests.Session, base: str, barrier: threading.Barrier | None = None):
        self.pair, self.http, self.base, self.barrier = pair, http, base, barrier
        self.statuses: list[int] = []
        self.trace: list[str] = []  # "<status> <path> [cookies it set]": what a failure shows

    def _inside(self, url: str) -> bool:
        return any(url.startswith(base) for base in self.pair.urls)

    def get(self, url: str) -> requests.Response:
        response = self.http.get(urljoin(self.base, url), allow_redirects=False, timeout=TIMEOUT)
        self.statuses.append(response.status_code)
        set_cookies = [value.split("=", 1)[0] + ("(deleted)" if "=;" in value else "")
                       for value in response.raw.headers.getlist("Set-Cookie")]
        self.trace.append(f"{response.status_code} {urlsplit(url).path} {set_cookies}")
        return response

    def walk(self, response: requests.Response) -> requests.Response:
        """Follow the provider's redirects (staying on this tab's instance); stop at a page or
        at a redirect that leaves the provider."""
        while response.is_redirect:
            location = urljoin(response.url, response.headers["Location"])
            if not self._inside(location):
                return response
            response = self.get(urlsplit(location)._replace(scheme="", netloc="").geturl())
        return response

    def sign_in(self, login_page: requests.Response) -> requests.Response:
        assert login_page.status_code == 200 and 'name="password"' in login_page.text, login_page.status_code
        data = {**_hidden_fields(login_page.text), "username": self.pair.live.user,
                "password": self.pair.live.password}
        if self.barrier is not None:
            self.barrier.wait(timeout=TIMEOUT)  # every tab submits its login form at once
        response = self.http.post(_form_action(login_page.text, login_page.url), data=data,
                                  allow_redirects=False, timeout=TIMEOUT)
        self.statuses.append(response.status_code)
        return self.walk(response)

    def allow(self, consent_page: requests.Response) -> requests.Response:
        """Press "Allow" on this tab's consent page (all tabs at once when there is a barrier)."""
        assert consent_page.status_code == 200 and 'name="decision"' in consent_page.text, consent_page.status_code
        data = {**_hidden_fields(consent_page.text), "decision": "allow"}
        if self.barrier is not None:
            self.barrier.wait(timeout=TIMEOUT)
        response = self.http.post(_form_action(consent_page.text, consent_page.url), data=data,
                                  allow_redirects=False, timeout=TIMEOUT)
        self.statuses.append(response.status_code)
        return self.walk(response)


def _consented(pair) -> None:
    """Alice has used the app before (its consent is remembered), in another browser."""
    LiveBrowser(pair.live).authorize(
        f"{pair.first.url}/authorize?{_query(pair.live, pair.live.clients['pair']['client_id'], 'earlier')}")


def test_eight_parallel_authorization_requests_in_one_browser_all_complete(two_instances):
    """Eight tabs of one browser with no session yet (a browser restoring its tabs) each start
    an authorization request, at once, on either instance, and sign in at once: each ends with
    a code and its own ``state`` (RFC 6749 §4.1.2), none with "request expired"."""
    pair = two_instances
    _consented(pair)
    client_id = pair.live.clients["pair"]["client_id"]
    http = requests.Session()
    barrier = threading.Barrier(TABS)

    def tab(i: int) -> tuple[str, dict, list[int]]:
        this = Tab(pair, http, pair.urls[i % 2], barrier)
        state = f"tab-{i}"
        barrier.wait(timeout=TIMEOUT)  # every tab sends its request at once
        page = this.walk(this.get(f"/authorize?{_query(pair.live, client_id, state)}"))
        final = this.sign_in(page)
        assert final.is_redirect, (state, final.status_code, final.text[:300])
        return state, parse_qs(urlsplit(final.headers["Location"]).query), this.statuses

    with ThreadPoolExecutor(TABS) as pool:
        results = list(pool.map(tab, range(TABS)))
    for state, answer, statuses in results:
        assert answer.get("state") == [state] and answer.get("code"), (state, answer, statuses)
        assert all(status < 500 for status in statuses), statuses
    assert len({answer["code"][0] for _, answer, _ in results}) == TABS


def test_eight_parallel_first_sign_ins_that_need_consent_all_complete(two_instances):
    """The same eight tabs for an app alice has never allowed: each signs in, then each
    consent page is submitted at once. Each consent form's CSRF token is bound to its own
    pending request, not to the session the other tabs' sign-ins keep replacing, so every tab
    ends with a code and its own ``state`` (RFC 6749 §4.1.2), none with a CSRF refusal."""
    pair = two_instances
    client_id = pair.first.create_client("E2E consent race", [pair.live.redirect_uri])["client_id"]
    http = requests.Session()
    barrier = threading.Barrier(TABS)

    def tab(i: int) -> tuple[str, dict, list[int]]:
        this = Tab(pair, http, pair.urls[i % 2], barrier)
        state = f"consent-tab-{i}"
        barrier.wait(timeout=TIMEOUT)
        page = this.walk(this.get(f"/authorize?{_query(pair.live, client_id, state)}"))
        consent = this.sign_in(page)
        final = this.allow(consent)
        assert final.is_redirect, (state, final.status_code, final.text[:300])
        return state, parse_qs(urlsplit(final.headers["Location"]).query), this.statuses

    with ThreadPoolExecutor(TABS) as pool:
        results = list(pool.map(tab, range(TABS)))
    for state, answer, statuses in results:
        assert answer.get("state") == [state] and answer.get("code"), (state, answer, statuses)
        assert all(status < 500 for status in statuses), statuses
    assert len({answer["code"][0] for _, answer, _ in results}) == TABS


def _signed_in_browser(pair) -> tuple[requests.Session, str]:
    """A browser signed in as alice, and an ID token for RP-initiated logout's id_token_hint."""
    client = pair.live.clients["pair"]
    browser = LiveBrowser(pair.live)
    verifier, challenge = pkce_pair()
    query = urlencode({"response_type": "code", "client_id": client["client_id"],
                       "redirect_uri": pair.live.redirect_uri, "scope": "openid", "state": "s",
                       "code_challenge": challenge, "code_challenge_method": "S256"})
    callback = browser.authorize(f"{pair.first.url}/authorize?{query}")
    code = parse_qs(urlsplit(callback).query)["code"][0]
    token = requests.post(f"{pair.second.url}/token", data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": pair.live.redirect_uri,
        "code_verifier": verifier}, auth=(client["client_id"], client["client_secret"]), timeout=TIMEOUT)
    assert token.status_code == 200, token.text
    return browser.http, token.json()["id_token"]


def _sign_out_while_loading(pair, pages: list[str], round_: int) -> tuple[requests.Session, Tab, list[Tab]]:
    """One round: a signed-in browser signs out in one tab while ``pages`` load in others, all
    at once; the sign-out's tab and each page's."""
    http, id_token = _signed_in_browser(pair)
    barrier = threading.Barrier(len(pages) + 1)

    def load(i: int) -> list[int]:
        tab = Tab(pair, http, pair.urls[(i + round_) % 2])
        barrier.wait(timeout=TIMEOUT)
        tab.walk(tab.get(pages[i]))
        return tab

    def sign_out() -> list[int]:
        tab = Tab(pair, http, pair.urls[round_ % 2])
        barrier.wait(timeout=TIMEOUT)
        tab.get(f"/logout?{urlencode({'id_token_hint': id_token})}")
        return tab

    with ThreadPoolExecutor(len(pages) + 1) as pool:
        ended = pool.submit(sign_out)
        loads = list(pool.map(load, range(len(pages))))
    return http, ended.result(), loads


def test_signing_out_while_other_tabs_load_gives_them_no_5xx(two_instances):
    """RP-Initiated Logout 1.0 §2 ends the session; tabs of the same browser loading at that
    moment, on either instance, some of them writing the session (a logout confirmation page,
    a step of an authorization request), get their page or a sign-in page, never a 5xx, and the
    session stays ended."""
    pair = two_instances
    client_id = pair.live.clients["pair"]["client_id"]
    pages = ["/logout", "/account", "/authorize?" + _query(pair.live, client_id, "t"),
             "/authorize?" + _query(pair.live, client_id, "p", prompt="login"), "/logout", "/login"]
    for round_ in range(6):
        http, ended, loads = _sign_out_while_loading(pair, pages, round_)
        assert ended.statuses == [200], ended.trace
        for page, tab in zip(pages, loads, strict=True):
            assert all(status < 500 for status in tab.statuses), (round_, page, tab.trace)
        account = http.get(f"{pair.first.url}/account", allow_redirects=False, timeout=TIMEOUT)
        assert account.status_code == 302 and "/login" in account.headers["Location"], \
            (round_, account.status_code, ended.trace, [tab.trace for tab in loads], list(http.cookies.keys()))


def test_3_1_2_1_prompt_login_in_one_tab_is_not_satisfied_by_a_sign_in_in_another(two_instances):
    """OIDC Core §3.1.2.1 prompt=login, per request: two tabs of a signed-in browser each ask
    for a fresh sign-in (on either instance); signing in on the second tab's page does not
    complete the first, which still shows its own login page."""
    pair = two_instances
    client_id = pair.live.clients["pair"]["client_id"]
    http, _ = _signed_in_browser(pair)
    first, second = Tab(pair, http, pair.first.url), Tab(pair, http, pair.second.url)
    first_page = first.walk(first.get(f"/authorize?{_query(pair.live, client_id, 'first', prompt='login')}"))
    second_page = second.walk(second.get(f"/authorize?{_query(pair.live, client_id, 'second', prompt='login')}"))
    assert 'name="password"' in first_page.text and 'name="password"' in second_page.text
    done = second.sign_in(second_page)
    assert parse_qs(urlsplit(done.headers["Location"]).query)["state"] == ["second"]
    pid = _hidden_fields(first_page.text)["p"]
    resumed = first.walk(first.get(f"/authorize/continue/{pid}"))
    assert resumed.status_code == 200 and 'name="password"' in resumed.text, resumed.status_code
    done = first.sign_in(resumed)
    assert parse_qs(urlsplit(done.headers["Location"]).query)["state"] == ["first"]
