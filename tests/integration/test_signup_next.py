"""Issue 12.2: a visitor sent to ``/login?next=...`` who creates an account instead keeps
``next`` through the sign-up page, the verification email's link and the first log-in, and
lands on it. Only same-site relative paths survive (``web.util.safe_next``) at every step."""

from __future__ import annotations

import re
from urllib.parse import parse_qs
from urllib.parse import quote
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select

from clinic_app.models import User
from tests.conftest import path_of
from tests.factories import PASSWORD
from tests.factories import make_user

NEXT = "/book/7/confirm?start=2026-11-24T10:00:00%2B00:00&therapist=3&chosen=any"
NEW_PASSWORD = "a-good-long-password"
FOREIGN = ["https://evil.example/", "//evil.example", "/\\evil", "/\\/evil.example",
           "javascript:alert(1)", "evil.example/path"]


def _hrefs(page: str, path: str) -> list[str]:
    """The (unescaped) links to ``path`` on a page."""
    return [h.replace("&amp;", "&") for h in re.findall(r'href="([^"]*)"', page)
            if urlsplit(h.replace("&amp;", "&")).path == path]


def _only(links: list[str]) -> str:
    """The one address every such link on the page has (header, menu and form links)."""
    assert links and len(set(links)) == 1, links
    return links[0]


def _next_of(url: str) -> str | None:
    values = parse_qs(urlsplit(url).query).get("next")
    return values[0] if values else None


def _sign_up(client, query: str, email: str = "vera@example.com"):
    return client.post(f"/signup{query}", data={"name": "Vera", "email": email,
                                                "password": NEW_PASSWORD, "consent": "y"})


def test_next_is_kept_through_signup_verification_and_the_first_log_in(client, db, mailbox):
    query = "?next=" + quote(NEXT, safe="")
    login_page = client.get("/login" + query).get_data(as_text=True)
    to_signup = _only(_hrefs(login_page, "/signup"))
    assert _next_of(to_signup) == NEXT
    signup_page = client.get(to_signup).get_data(as_text=True)
    # The way back to log in keeps it too.
    back = _only(_hrefs(signup_page, "/login"))
    assert _next_of(back) == NEXT
    sent = _sign_up(client, "?" + urlsplit(to_signup).query)
    assert sent.status_code == 200 and "on its way" in sent.get_data(as_text=True)
    link = mailbox.last_link("vera@example.com", "/verify/")
    assert _next_of(link) == NEXT
    verified = client.get(path_of(link))
    assert verified.status_code == 302
    to_login = verified.headers["Location"]
    assert urlsplit(to_login).path == "/login" and _next_of(to_login) == NEXT
    user = db.session.scalar(select(User).where(User.email == "vera@example.com"))
    assert user.email_verified_at is not None
    landed = client.post(to_login, data={"email": "vera@example.com",
                                         "password": NEW_PASSWORD})
    assert landed.status_code == 302 and landed.headers["Location"] == NEXT


def test_without_next_nothing_changes(client, db, mailbox):
    assert _only(_hrefs(client.get("/login").get_data(as_text=True), "/signup")) == "/signup"
    _sign_up(client, "")
    link = mailbox.last_link("vera@example.com", "/verify/")
    assert "next" not in link
    verified = client.get(path_of(link))
    assert verified.headers["Location"] == "/login"
    landed = client.post("/login", data={"email": "vera@example.com",
                                         "password": NEW_PASSWORD})
    assert landed.headers["Location"] == "/appointments"


def test_the_resend_and_account_exists_emails_carry_next_too(app, client, db, mailbox):
    query = "?next=" + quote(NEXT, safe="")
    _sign_up(client, query)
    login_page = client.get("/login" + query).get_data(as_text=True)
    resend = _only(_hrefs(login_page, "/verify/resend"))
    assert _next_of(resend) == NEXT
    client.post(resend, data={"email": "vera@example.com"})
    links = mailbox.links("vera@example.com", "/verify/")
    assert len(links) == 2 and all(_next_of(u) == NEXT for u in links)
    # Signing up again with a taken address: the owner's "log in" link goes on to next.
    make_user(app, email="owner@example.com")
    _sign_up(client, query, email="owner@example.com")
    (to_login,) = [u for u in mailbox.links("owner@example.com", "/login")
                   if urlsplit(u).path == "/login"]
    assert _next_of(to_login) == NEXT
    landed = client.post(path_of(to_login), data={"email": "owner@example.com",
                                                  "password": PASSWORD})
    assert landed.headers["Location"] == NEXT


@pytest.mark.parametrize("foreign", FOREIGN)
def test_a_foreign_next_is_dropped_at_every_step(client, db, mailbox, foreign):
    query = "?next=" + quote(foreign, safe="")
    login_page = client.get("/login" + query).get_data(as_text=True)
    assert _only(_hrefs(login_page, "/signup")) == "/signup"
    signup_page = client.get("/signup" + query).get_data(as_text=True)
    assert _only(_hrefs(signup_page, "/login")) == "/login"
    _sign_up(client, query)
    link = mailbox.last_link("vera@example.com", "/verify/")
    assert "next" not in link and "evil" not in link
    # A next added to the email's link by hand is dropped too.
    verified = client.get(path_of(link) + query)
    assert verified.status_code == 302 and verified.headers["Location"] == "/login"
    landed = client.post("/login" + query, data={"email": "vera@example.com",
                                                 "password": NEW_PASSWORD})
    assert landed.status_code == 302 and landed.headers["Location"] == "/appointments"
