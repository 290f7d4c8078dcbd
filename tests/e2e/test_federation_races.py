"""Linked sign-ins under concurrency, against two real provider processes on one database
(``two_instances``; PostgreSQL in the PostgreSQL pass): two unlinks of an account's last two
linked sign-ins, one at each instance at the same moment, must leave one (the account keeps a
way in), and the database holds at most one identity per account and upstream."""

from __future__ import annotations

import re
import secrets
import threading
from dataclasses import replace
from html import unescape

import pytest
import requests
from sqlalchemy import create_engine, text
from sqlalchemy.exc import IntegrityError

from .conftest import TIMEOUT, LiveBrowser

pytestmark = pytest.mark.e2e
ROUNDS = 8


def signed_in(pair, url: str, username: str, password: str) -> LiveBrowser:
    browser = LiveBrowser(replace(pair.live, user=username, password=password, issuer=url))
    page = browser.go(f"{url}/login")
    assert page.status_code == 200 and 'name="password"' not in page.text, page.status_code
    return browser


def csrf_of(browser: LiveBrowser, url: str) -> str:
    page = browser.http.get(f"{url}/account", timeout=TIMEOUT)
    return unescape(re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1))


def _unlink(barrier, answers, i, browser, url, link_id, token):
    barrier.wait()
    answers[i] = browser.http.post(f"{url}/account/links/{link_id}/remove", data={"csrf_token": token},
                                   allow_redirects=False, timeout=TIMEOUT)


@pytest.fixture(scope="module")
def database(two_instances):
    engine = create_engine(two_instances.first.db_url)
    yield engine
    engine.dispose()


def test_concurrent_unlinks_of_the_last_two_links_at_two_instances_leave_a_way_in(two_instances, database):
    """Issue 12: "a locked unlink, so two concurrent unlinks cannot leave an account with no
    way in". The account has no password and no passkey, only two linked sign-ins; each round
    asks instance 1 to unlink one and instance 2 the other at once. Exactly one succeeds (302
    to ``done=unlinked``), the other is refused (409), and one link remains."""
    pair = two_instances
    password = secrets.token_urlsafe(18)
    account = pair.first.create_user("dora", password)
    first = signed_in(pair, pair.first.url, "dora", password)
    second = signed_in(pair, pair.second.url, "dora", password)
    with database.begin() as conn:
        account_id = conn.execute(text("SELECT id FROM account WHERE subject = :s"), {"s": account["sub"]}).scalar()
        conn.execute(text("UPDATE account SET password_hash = NULL WHERE id = :id"), {"id": account_id})
    outcomes = []
    for round_ in range(ROUNDS):
        with database.begin() as conn:
            conn.execute(text("DELETE FROM federated_identity WHERE account_id = :id"), {"id": account_id})
            ids = [conn.execute(text(
                "INSERT INTO federated_identity (account_id, provider, subject, issuer) "
                "VALUES (:a, :p, :s, :i) RETURNING id"),
                {"a": account_id, "p": provider, "s": f"{provider}-{round_}", "i": f"https://{provider}.example"},
            ).scalar() for provider in ("github", "corp")]
        tokens = [csrf_of(first, pair.first.url), csrf_of(second, pair.second.url)]
        barrier = threading.Barrier(2)
        answers: list = [None, None]

        threads = [threading.Thread(target=_unlink, args=(barrier, answers, 0, first, pair.first.url, ids[0],
                                                          tokens[0])),
                   threading.Thread(target=_unlink, args=(barrier, answers, 1, second, pair.second.url, ids[1],
                                                          tokens[1]))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(TIMEOUT * 2)
        with database.connect() as conn:
            left = conn.execute(text("SELECT count(*) FROM federated_identity WHERE account_id = :id"),
                                {"id": account_id}).scalar()
        statuses = sorted(answer.status_code for answer in answers)
        outcomes.append((left, statuses))
        assert left == 1, f"round {round_}: {left} links left, answers {statuses}"
        assert statuses == [302, 409], f"round {round_}: {statuses}"
        done = next(a for a in answers if a.status_code == 302)
        assert done.headers["Location"].endswith("/account?done=unlinked")
    assert len(outcomes) == ROUNDS


def test_the_database_refuses_a_second_link_to_the_same_upstream(two_instances, database):
    """Migration 0010: ``(account_id, provider)`` is unique, so no race between two linking
    callbacks can give one account two identities at one upstream."""
    account = two_instances.first.create_user("erin", secrets.token_urlsafe(18))
    with database.begin() as conn:
        account_id = conn.execute(text("SELECT id FROM account WHERE subject = :s"), {"s": account["sub"]}).scalar()
        conn.execute(text("INSERT INTO federated_identity (account_id, provider, subject) VALUES (:a, 'github', 'x1')"),
                     {"a": account_id})
    with pytest.raises(IntegrityError), database.begin() as conn:
        conn.execute(text("INSERT INTO federated_identity (account_id, provider, subject) VALUES (:a, 'github', 'x2')"),
                     {"a": account_id})


def test_unlinking_an_already_removed_link_is_no_500(two_instances, database):
    """Two tabs pressing "Unlink" on the same link: the second finds it gone and goes back to
    the account page, never a 500."""
    pair = two_instances
    password = secrets.token_urlsafe(18)
    account = pair.first.create_user("fay", password)
    browser = signed_in(pair, pair.first.url, "fay", password)
    with database.begin() as conn:
        account_id = conn.execute(text("SELECT id FROM account WHERE subject = :s"), {"s": account["sub"]}).scalar()
        link_id = conn.execute(text("INSERT INTO federated_identity (account_id, provider, subject) "
                                    "VALUES (:a, 'github', 'fay-1') RETURNING id"), {"a": account_id}).scalar()
    token = csrf_of(browser, pair.first.url)
    answers = []
    barrier = threading.Barrier(2)

    def unlink(url):
        barrier.wait()
        answers.append(browser.http.post(f"{url}/account/links/{link_id}/remove", data={"csrf_token": token},
                                         allow_redirects=False, timeout=TIMEOUT))

    threads = [threading.Thread(target=unlink, args=(url,)) for url in pair.urls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(TIMEOUT * 2)
    assert sorted(a.status_code for a in answers) == [302, 302], [a.status_code for a in answers]
    assert requests.get(f"{pair.first.url}/account", cookies=browser.http.cookies, timeout=TIMEOUT).status_code == 200
