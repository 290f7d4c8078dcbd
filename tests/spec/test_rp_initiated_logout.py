"""OpenID Connect RP-Initiated Logout 1.0 §2 (the logout request) and §3 (redirection to the
RP), following the conformance suite's RP-initiated plan (see /work/shared/CONFORMANCE.md)."""

from __future__ import annotations

import json
from urllib.parse import urlsplit

import pytest
from joserfc import jwt
from sqlalchemy import func, select

from oidc_provider.extensions import db
from oidc_provider.models import BrowserSession

from ..helpers import REDIRECT_URI, Browser, csrf_token, make_client, make_user, query_of
from ._clients import b64url, claims_of, header_of, issue_tokens, rsa_key

BYE = "https://rp.example/bye"


@pytest.fixture
def signed_in(app, browser):
    """A person signed in to an RP; returns (client_id, id_token)."""
    make_user(app)
    client_id, secret = make_client(app, post_logout_redirect_uris=[BYE])
    body = issue_tokens(browser, client_id, secret)
    return client_id, body["id_token"]


def _sessions(app) -> int:
    with app.app_context():
        count = db.session.scalar(select(func.count()).select_from(BrowserSession).where(
            BrowserSession.account_id.is_not(None)))
        db.session.remove()
        return count


def _still_signed_in(browser, client_id) -> bool:
    """OIDC Core §3.1.2.1 ``prompt=none``: silent success only with a live session."""
    params = browser.authorize_params(client_id, prompt="none")
    response = browser.get("/authorize", query_string=params)
    assert response.status_code == 302
    location = response.headers["Location"]
    assert location.startswith(REDIRECT_URI)
    query = query_of(location)
    if "code" in query:
        return True
    assert query["error"] == "login_required"
    return False


def _assert_error_page(response):
    """§3: "The OP MUST NOT perform post-logout redirection if the post_logout_redirect_uri
    value supplied does not exactly match one of the previously registered
    post_logout_redirect_uris values"; an invalid request shows an error page."""
    assert response.status_code == 400
    assert response.mimetype == "text/html"
    assert "Location" not in response.headers
    assert "Logout request not valid" in response.text


def _cookie_cleared(response) -> bool:
    cookies = [c for c in response.headers.getlist("Set-Cookie") if c.startswith("oidc_session=")]
    return bool(cookies) and all("Max-Age=0" in c or "Expires=Thu, 01 Jan 1970" in c for c in cookies)


def test_2_valid_hint_and_registered_uri_redirects_with_state(app, browser, signed_in):
    """§2: "the OP ... redirects the End-User's User Agent to the post_logout_redirect_uri"
    and §3: "state ... If present in the Logout Request, the OP passes this value to the RP
    using the state parameter when redirecting the User Agent back to the RP"; the session ends
    (a later ``prompt=none`` gives ``login_required``)."""
    client_id, id_token = signed_in
    assert _sessions(app) == 1
    response = browser.get("/logout", query_string={
        "id_token_hint": id_token, "post_logout_redirect_uri": BYE, "state": "s-123"})
    assert response.status_code == 302
    assert response.headers["Location"] == BYE + "?state=s-123"
    assert _cookie_cleared(response)
    assert _sessions(app) == 0
    assert not _still_signed_in(browser, client_id)


def test_2_no_state_redirects_without_state(app, browser, signed_in):
    """§3: state is passed back only "If present in the Logout Request"."""
    client_id, id_token = signed_in
    response = browser.get("/logout", query_string={"id_token_hint": id_token, "post_logout_redirect_uri": BYE})
    assert response.status_code == 302
    assert response.headers["Location"] == BYE
    assert not _still_signed_in(browser, client_id)


def test_2_post_method_is_supported(app, browser, signed_in):
    """§2: "OPs MUST support the use of the HTTP GET and POST methods at the Logout
    Endpoint"."""
    client_id, id_token = signed_in
    response = browser.http.post("/logout", data={
        "id_token_hint": id_token, "post_logout_redirect_uri": BYE, "state": "p"})
    assert response.status_code == 302
    assert response.headers["Location"] == BYE + "?state=p"
    assert not _still_signed_in(browser, client_id)


@pytest.mark.parametrize("uri", ["https://rp.example/elsewhere", BYE + "?foo=bar", BYE + "/", "https://RP.example/bye"])
def test_3_unregistered_post_logout_redirect_uri_is_error_page(app, browser, signed_in, uri):
    """§3: "The OP MUST NOT perform post-logout redirection if the post_logout_redirect_uri
    value supplied does not exactly match one of the previously registered
    post_logout_redirect_uris values" (conformance: bad-post-logout-redirect-uri,
    query-added-to-post-logout-redirect-uri)."""
    client_id, id_token = signed_in
    _assert_error_page(browser.get("/logout", query_string={
        "id_token_hint": id_token, "post_logout_redirect_uri": uri, "state": "x"}))
    assert _still_signed_in(browser, client_id)


def test_2_redirect_uri_without_hint_or_client_id_is_error_page(app, browser, signed_in):
    """§2: "An id_token_hint carring an ID Token for the RP is also REQUIRED when requesting
    post-logout redirection; if it is not supplied with post_logout_redirect_uri, the OP MUST
    NOT perform post-logout redirection unless the OP has other means of confirming the
    legitimacy of the post-logout redirection target" (conformance: no-id-token-hint)."""
    client_id, _ = signed_in
    _assert_error_page(browser.get("/logout", query_string={"post_logout_redirect_uri": BYE, "state": "x"}))
    assert _still_signed_in(browser, client_id)


def test_2_client_id_confirms_the_target_after_the_person_agrees(app, browser, signed_in):
    """§2: client_id lets the OP check post_logout_redirect_uri "when the id_token_hint is not
    present"; without a hint the End-User is asked first ("the OP SHOULD ask the End-User
    whether to log out"), then redirected with state."""
    client_id, _ = signed_in
    page = browser.get("/logout", query_string={"client_id": client_id, "post_logout_redirect_uri": BYE,
                                                "state": "c"})
    assert page.status_code == 200
    assert "Sign out?" in page.text
    done = browser.http.post("/logout/confirm", data={"csrf_token": csrf_token(page.text), "confirm": "yes"})
    assert done.status_code == 302
    assert done.headers["Location"] == BYE + "?state=c"
    assert not _still_signed_in(browser, client_id)


def test_2_hint_rewritten_to_alg_none_is_error_page(app, browser, signed_in):
    """§2 id_token_hint: "The OP need not be listed as an audience of the ID Token when it is
    used as an id_token_hint value" but it must be an ID Token the OP issued; one re-written to
    ``alg: none`` is not (conformance: modified-id-token-hint)."""
    client_id, id_token = signed_in
    header = dict(header_of(id_token), alg="none")
    forged = b64url(json.dumps(header).encode()) + "." + id_token.split(".")[1] + "."
    _assert_error_page(browser.get("/logout", query_string={
        "id_token_hint": forged, "post_logout_redirect_uri": BYE, "state": "x"}))
    assert _still_signed_in(browser, client_id)


@pytest.mark.parametrize("same_kid", [True, False])
def test_2_hint_signed_by_a_foreign_key_is_error_page(app, browser, signed_in, same_kid):
    """§2: the id_token_hint is an ID Token "previously issued by the OP"; one signed by
    another key (conformance: bad-id-token-hint) never leads to a redirect."""
    client_id, id_token = signed_in
    foreign = rsa_key()
    kid = header_of(id_token)["kid"] if same_kid else foreign.kid
    forged = jwt.encode({"alg": "RS256", "kid": kid}, claims_of(id_token), foreign, algorithms=["RS256"])
    _assert_error_page(browser.get("/logout", query_string={
        "id_token_hint": forged, "post_logout_redirect_uri": BYE, "state": "x"}))
    assert _still_signed_in(browser, client_id)


def test_2_client_id_not_matching_hint_is_error_page(app, browser, signed_in):
    """§2: "If both client_id and id_token_hint are present, the OP MUST verify that the Client
    Identifier matches the one used when issuing the ID Token"."""
    client_id, id_token = signed_in
    other_id, _ = make_client(app, name="Other RP", post_logout_redirect_uris=[BYE])
    _assert_error_page(browser.get("/logout", query_string={
        "id_token_hint": id_token, "client_id": other_id, "post_logout_redirect_uri": BYE}))
    assert _still_signed_in(browser, client_id)


def test_2_garbage_hint_is_error_page(app, browser, signed_in):
    """§2: an id_token_hint that is not an ID Token from this OP is refused without redirect."""
    client_id, _ = signed_in
    for hint in ("garbage", "a.b.c", "x" * 5000):
        _assert_error_page(browser.get("/logout", query_string={"id_token_hint": hint}))
    assert _still_signed_in(browser, client_id)


def test_2_no_parameters_asks_then_logs_out(app, browser, signed_in):
    """§2: "At the Logout Endpoint, the OP SHOULD ask the End-User whether to log out of the OP
    as well"; confirming ends the session and shows the logged-out page (conformance:
    no-params)."""
    client_id, _ = signed_in
    page = browser.get("/logout")
    assert page.status_code == 200
    assert "Sign out?" in page.text
    assert _sessions(app) == 1
    done = browser.http.post("/logout/confirm", data={"csrf_token": csrf_token(page.text), "confirm": "yes"})
    assert done.status_code == 200
    assert "You are signed out" in done.text
    assert _cookie_cleared(done)
    assert _sessions(app) == 0
    assert not _still_signed_in(browser, client_id)


def test_2_declining_keeps_the_session(app, browser, signed_in):
    """§2: the OP asks "whether to log out"; answering no keeps the End-User signed in."""
    client_id, _ = signed_in
    page = browser.get("/logout")
    kept = browser.http.post("/logout/confirm", data={"csrf_token": csrf_token(page.text), "confirm": "no"})
    assert kept.status_code == 200
    assert "You are still signed in" in kept.text
    assert _still_signed_in(browser, client_id)


def test_2_confirm_without_csrf_token_is_refused(app, browser, signed_in):
    """§2 (logout is a state change the End-User confirms): a confirmation not sent by the OP's
    own page is refused and the session stays."""
    client_id, _ = signed_in
    browser.get("/logout")
    refused = browser.http.post("/logout/confirm", data={"confirm": "yes"})
    assert refused.status_code == 400
    assert _still_signed_in(browser, client_id)


def test_2_only_state_asks_for_confirmation(app, browser, signed_in):
    """§2: without id_token_hint there is no proof the RP asked; the OP asks the End-User
    (conformance: only-state) and never redirects."""
    client_id, _ = signed_in
    page = browser.get("/logout", query_string={"state": "only"})
    assert page.status_code == 200
    assert "Sign out?" in page.text
    assert "Location" not in page.headers
    assert _still_signed_in(browser, client_id)


def test_2_valid_hint_without_redirect_uri_shows_logged_out_page(app, browser, signed_in):
    """§2: with a valid id_token_hint and no post_logout_redirect_uri the OP logs out and
    shows its own page (conformance: no-post-logout-redirect-uri)."""
    client_id, id_token = signed_in
    response = browser.get("/logout", query_string={"id_token_hint": id_token, "state": "ignored"})
    assert response.status_code == 200
    assert "You are signed out" in response.text
    assert _cookie_cleared(response)
    assert _sessions(app) == 0
    assert not _still_signed_in(browser, client_id)


def test_2_hint_for_another_person_asks_first(app, browser, signed_in):
    """§2: the OP "SHOULD ask the End-User whether to log out" when the hint does not name the
    signed-in End-User (an RP cannot end someone else's session silently)."""
    client_id, id_token = signed_in
    other = Browser(app)
    make_user(app, username="bob")
    other.sign_in_and_authorize(client_id, username="bob")
    page = other.get("/logout", query_string={"id_token_hint": id_token, "post_logout_redirect_uri": BYE})
    assert page.status_code == 200
    assert "Sign out?" in page.text
    assert _still_signed_in(other, client_id)


def test_2_repeated_parameter_is_error_page(app, browser, signed_in):
    """OAuth 2.0 parameter rules (RFC 6749 §3.1, used by §2): parameters "MUST NOT be included
    more than once"."""
    client_id, id_token = signed_in
    response = browser.get(f"/logout?id_token_hint={id_token}&post_logout_redirect_uri={BYE}"
                           f"&post_logout_redirect_uri=https://evil.example/")
    _assert_error_page(response)
    assert _still_signed_in(browser, client_id)


def test_3_redirect_keeps_the_registered_query(app, browser):
    """§3: the registered post_logout_redirect_uri is used exactly; state is added to its
    query."""
    make_user(app)
    target = "https://rp.example/bye?from=op"
    client_id, secret = make_client(app, post_logout_redirect_uris=[target])
    id_token = issue_tokens(browser, client_id, secret)["id_token"]
    response = browser.get("/logout", query_string={"id_token_hint": id_token,
                                                    "post_logout_redirect_uri": target, "state": "s"})
    assert response.status_code == 302
    assert query_of(response.headers["Location"]) == {"from": "op", "state": "s"}
    assert urlsplit(response.headers["Location"]).path == "/bye"


def test_2_an_access_token_as_id_token_hint_is_refused_without_redirect(app, browser):
    """§2: the OP validates "that it was the issuer of the ID Token" — an access token signed
    with the same keys is no ID token, so no silent logout and no redirect."""
    make_user(app)
    client_id, secret = make_client(app, trusted=True)
    tokens = issue_tokens(browser, client_id, secret)
    response = browser.http.get("/logout", query_string={
        "id_token_hint": tokens["access_token"], "post_logout_redirect_uri": "https://rp.example/bye"})
    assert response.status_code == 400
    assert "Location" not in response.headers
