"""Server-side log-in sessions: log-out ends them, also for copied cookies (issue 9 item 3)."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import func
from sqlalchemy import select

from clinic_app.models.accounts import LoginSession
from clinic_app.security import token_hash
from clinic_app.services.accounts import invite_therapist
from tests.conftest import path_of
from tests.factories import PASSWORD
from tests.factories import make_user


def _log_in(client, email, *, remember=False):
    data = {"email": email, "password": PASSWORD}
    if remember:
        data["remember"] = "y"
    response = client.post("/login", data=data)
    assert response.status_code == 302
    return response


def _copy(app, cookies: dict[str, str]):
    """A fresh browser holding copies of the given cookies (what a thief would have)."""
    thief = app.test_client()
    for name, value in cookies.items():
        thief.set_cookie(name, value)
    return thief


def _cookie(client, name: str) -> str:
    cookie = client.get_cookie(name)
    assert cookie is not None, f"no {name} cookie"
    return cookie.value


def test_copied_session_cookie_is_refused_after_logout(app, db):
    make_user(app, email="copy@example.com")
    browser = app.test_client()
    _log_in(browser, "copy@example.com")
    stolen = {"session": _cookie(browser, "session")}
    assert _copy(app, stolen).get("/account/").status_code == 200  # the copy works...
    browser.post("/logout")
    assert browser.get("/account/").status_code == 302
    assert _copy(app, stolen).get("/account/").status_code == 302  # ...until log-out


def test_copied_remember_cookie_is_refused_after_logout(app, db):
    make_user(app, email="keep@example.com")
    browser = app.test_client()
    _log_in(browser, "keep@example.com", remember=True)
    stolen = {"remember_token": _cookie(browser, "remember_token")}
    assert _copy(app, stolen).get("/account/").status_code == 200
    browser.post("/logout")
    assert browser.get_cookie("remember_token") is None  # the browser forgets it too
    assert _copy(app, stolen).get("/account/").status_code == 302


def test_logout_ends_only_this_devices_session(app, db):
    make_user(app, email="two-devices@example.com")
    laptop, phone = app.test_client(), app.test_client()
    _log_in(laptop, "two-devices@example.com")
    _log_in(phone, "two-devices@example.com")
    assert db.session.scalar(select(func.count()).select_from(LoginSession)) == 2
    laptop.post("/logout")
    assert laptop.get("/account/").status_code == 302
    assert phone.get("/account/").status_code == 200
    assert db.session.scalar(select(func.count()).select_from(LoginSession)) == 1


def test_only_the_hash_of_the_session_secret_is_stored(app, db):
    make_user(app, email="hashed@example.com")
    browser = app.test_client()
    _log_in(browser, "hashed@example.com", remember=True)
    with app.test_request_context():
        serializer = app.session_interface.get_signing_serializer(app)
        user_id = serializer.loads(_cookie(browser, "session"))["_user_id"]
    uid, raw = user_id.split(":", 1)
    assert len(raw) >= 43  # 256 bits, URL-safe base64
    row = db.session.scalar(select(LoginSession))
    assert row.user_id == int(uid) and row.token_hash == token_hash(raw)
    assert raw not in row.token_hash


def test_expired_login_session_is_refused(app, db, clock):
    make_user(app, email="expire@example.com")
    browser = app.test_client()
    _log_in(browser, "expire@example.com", remember=True)
    stolen = {"remember_token": _cookie(browser, "remember_token")}
    clock.advance(timedelta(days=app.config["REMEMBER_COOKIE_DURATION_DAYS"]) - timedelta(hours=1))
    assert _copy(app, stolen).get("/account/").status_code == 200
    clock.advance(timedelta(hours=2))
    assert _copy(app, stolen).get("/account/").status_code == 302


@pytest.mark.parametrize("forged", ["1:1", "1:", ":abc", "abc:def", "1", "9" * 40 + ":x"])
def test_ids_in_other_formats_are_refused(app, db, forged):
    from clinic_app.auth import load_user

    make_user(app, email="forged@example.com")
    assert load_user(forged) is None


def test_expired_and_revoked_rows_are_cleaned_up_at_the_next_log_in(app, db, clock):
    make_user(app, email="tidy@example.com")
    for _ in range(3):
        _log_in(app.test_client(), "tidy@example.com")
    clock.advance(timedelta(days=app.config["REMEMBER_COOKIE_DURATION_DAYS"] + 1))
    _log_in(app.test_client(), "tidy@example.com")
    assert db.session.scalar(select(func.count()).select_from(LoginSession)) == 1


@pytest.fixture
def csrf_app(app):
    app.config["WTF_CSRF_ENABLED"] = True
    return app


def _csrf_from(page: bytes) -> str:
    match = re.search(rb'name="csrf_token"[^>]*value="([^"]+)"', page)
    assert match, "no CSRF token on the page"
    return match.group(1).decode()


def test_login_rotates_the_csrf_secret(csrf_app, db):
    make_user(csrf_app, email="csrf@example.com")
    browser = csrf_app.test_client()
    before = _csrf_from(browser.get("/login").data)
    response = browser.post("/login", data={"email": "csrf@example.com", "password": PASSWORD,
                                            "csrf_token": before})
    assert response.status_code == 302
    # A token learnt before the log-in (say, planted by an attacker) is refused after it.
    stale = browser.post("/account/preferences", data={"csrf_token": before,
                                                      "pr-wants_prompts": "y"})
    assert stale.status_code == 400
    after = _csrf_from(browser.get("/account/").data)
    assert after != before
    fresh = browser.post("/logout", data={"csrf_token": after})
    assert fresh.status_code == 302
    assert browser.get("/account/").status_code == 302


def test_logout_without_csrf_token_is_refused(csrf_app, db):
    make_user(csrf_app, email="nocsrf@example.com")
    browser = csrf_app.test_client()
    token = _csrf_from(browser.get("/login").data)
    browser.post("/login", data={"email": "nocsrf@example.com", "password": PASSWORD,
                                 "csrf_token": token})
    assert browser.post("/logout").status_code == 400
    assert browser.get("/account/").status_code == 200


def _rows(db) -> list[tuple[int, str]]:
    db.session.expire_all()
    return [(row.user_id, row.token_hash) for row in db.session.scalars(select(LoginSession))]


def test_every_way_in_closes_whoever_was_logged_in_on_the_device(app, db, mailbox):
    """Password, sign-in link and invitation all finish in one place (``web.auth``): the
    device's previous log-in session ends on the server, one row opens for the new user."""
    first = make_user(app, email="first@example.com")
    second = make_user(app, email="second@example.com")
    browser = app.test_client()
    _log_in(browser, "first@example.com")
    assert [user for user, _ in _rows(db)] == [first.id]
    browser.post("/login/link", data={"email": "second@example.com"})
    link = path_of(mailbox.last_link("second@example.com", "/login/link/"))
    assert browser.post(link).headers["Location"] == "/appointments"
    assert [user for user, _ in _rows(db)] == [second.id]
    invite_therapist(db.session, name="Tess Therapist", email="tess@example.com",
                     now=app.extensions["clock"].now())
    db.session.commit()
    invite = path_of(mailbox.last_link("tess@example.com", "/invite/"))
    joined = browser.post(invite, data={"password": "another-long-passphrase"})
    assert joined.status_code == 302 and joined.headers["Location"] == "/therapist/"
    tess = [user for user, _ in _rows(db)]
    assert len(tess) == 1 and tess[0] not in (first.id, second.id)
    # A refused way in changes nothing: the therapist stays logged in.
    assert browser.post(link).status_code == 400
    assert [user for user, _ in _rows(db)] == tess
