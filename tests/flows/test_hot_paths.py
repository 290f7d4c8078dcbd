"""The requests every relying party makes most, kept cheap (issue 13; DESIGN "Speed"): a
signed-in authorization request that completes at once (OIDC Core §3.1.2), discovery (OIDC
Discovery 1.0 §4) and the JWKS (RFC 7517 §5). What they cost is counted in database
statements: the work a request can avoid is a statement it does not send."""

from contextlib import contextmanager

from sqlalchemy import event, select

from oidc_provider.extensions import db
from oidc_provider.models import AuditEvent, AuthorizationCode

from ..helpers import REDIRECT_URI, make_client, make_user, query_of

CONTROL = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE", "PRAGMA")


@contextmanager
def statements(app):
    """The SQL statements (transaction control left out) sent while the block runs."""
    sent = []

    def seen(_conn, _cursor, statement, *_args):
        if not statement.lstrip().upper().startswith(CONTROL):
            sent.append(" ".join(statement.split()))

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", seen)
    try:
        yield sent
    finally:
        event.remove(engine, "before_cursor_execute", seen)


def _reads(sent: list[str]) -> int:
    return sum(statement.startswith("SELECT") for statement in sent)


def _signed_in(app, browser, client_id):
    first = browser.sign_in_and_authorize(client_id)
    assert "code" in first
    return browser.authorize_params(client_id)


def test_3_1_2_signed_in_trusted_request_reads_once_and_writes_code_and_audit(app, browser):
    """A signed-in person at a trusted client: the session, the account with its factors, the
    client are one read each, the consent's generation (locked) and then the consent two more
    (``consents.current_state``: a withdrawal committed meanwhile is seen whole); the code and
    its audit row are the only writes (no pending request, no session write)."""
    make_user(app)
    client_id, _ = make_client(app, trusted=True)
    params = _signed_in(app, browser, client_id)
    with statements(app) as sent:
        response = browser.get("/authorize", query_string=params)
    assert response.status_code == 302
    assert response.headers["Location"].startswith(REDIRECT_URI)
    assert "code" in query_of(response.headers["Location"])
    # The client is a fifth read, on the thread's own connection (oidc_provider/hot.py),
    # which the engine's events do not see.
    assert _reads(sent) == 4, sent
    writes = sorted(statement.split()[2] for statement in sent if not statement.startswith("SELECT"))
    assert writes == ["audit_event", "authorization_code"], sent  # "INSERT INTO <table>"
    assert "pending" not in " ".join(response.headers.getlist("Set-Cookie"))


def test_3_1_2_code_and_its_audit_row_are_stored_together(app, browser):
    """The code is committed with its ``oauth:code:issued`` audit row, and redeems."""
    make_user(app)
    client_id, secret = make_client(app, trusted=True)
    params = _signed_in(app, browser, client_id)
    response = browser.get("/authorize", query_string=params)
    code = query_of(response.headers["Location"])["code"]
    with app.app_context():
        issued = db.session.scalars(select(AuditEvent).where(AuditEvent.event == "oauth:code:issued")).all()
        codes = db.session.scalars(select(AuthorizationCode)).all()
        assert len(issued) == len(codes) == 2
        assert issued[-1].account == "alice" and issued[-1].client == client_id
        assert issued[-1].detail == {"scope": "openid profile email"}
        assert issued[-1].at is not None
    assert browser.redeem(client_id, secret, code).status_code == 200


def test_3_1_2_signed_in_consented_request_completes_at_once(app, browser):
    """An untrusted client the person has consented to: the consent is read with its
    generation and the request completes without the consent page."""
    make_user(app)
    client_id, secret = make_client(app)
    params = _signed_in(app, browser, client_id)
    with statements(app) as sent:
        response = browser.get("/authorize", query_string=params)
    assert response.headers["Location"].startswith(REDIRECT_URI), response.headers["Location"]
    # The client is a fifth read, on the thread's own connection (oidc_provider/hot.py),
    # which the engine's events do not see.
    assert _reads(sent) == 4, sent
    code = query_of(response.headers["Location"])["code"]
    assert browser.redeem(client_id, secret, code).status_code == 200


def test_discovery_4_and_rfc7517_5_send_no_statement_even_with_a_session_cookie(app, browser):
    """Discovery and the JWKS are served from one serialization and never load the session
    a browser's cookie names."""
    make_user(app)
    client_id, _ = make_client(app, trusted=True)
    _signed_in(app, browser, client_id)
    for path in ("/.well-known/openid-configuration", "/.well-known/oauth-authorization-server", "/jwks.json"):
        browser.get(path)  # the signing keys' cache is filled
        with statements(app) as sent:
            first = browser.get(path)
            second = browser.get(path)
        assert sent == [], path
        assert first.status_code == second.status_code == 200
        assert first.data == second.data and first.headers["ETag"] == second.headers["ETag"]
        assert first.headers["Date"]
        again = browser.get(path, headers={"If-None-Match": first.headers["ETag"]})
        assert again.status_code == 304 and again.headers["ETag"] == first.headers["ETag"]
