"""Accounts through the pages: sign-up, verification, log-in, reset, changes, invites."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from clinic_app.models import OneTimeToken
from clinic_app.models import User
from tests.conftest import path_of
from tests.factories import PASSWORD
from tests.factories import make_user

NEW_PASSWORD = "another-long-passphrase"


def signup(client, email="casey@example.com", password="a-good-long-password", **extra):
    data = {"name": "Casey", "email": email, "password": password, "consent": "y", **extra}
    return client.post("/signup", data=data)


def test_signup_verify_login_logout(client, db, mailbox):
    response = signup(client, phone="0117 496 0001")
    assert response.status_code == 200
    assert b"on its way" in response.data
    user = db.session.scalar(select(User).where(User.email == "casey@example.com"))
    assert user.role == "client" and user.consent_at is not None and user.phone == "0117 496 0001"
    assert user.password_hash.startswith("$argon2id$")
    # Not verified yet: log-in refused with a clear message.
    response = client.post("/login", data={"email": "casey@example.com",
                                            "password": "a-good-long-password"})
    assert response.status_code == 401
    assert b"confirm your email" in response.data
    link = mailbox.last_link("casey@example.com", "/verify/")
    response = client.get(path_of(link))
    assert response.status_code == 302
    db.session.refresh(user)
    assert user.email_verified_at is not None
    response = client.post("/login", data={"email": "Casey@Example.com",
                                            "password": "a-good-long-password"})
    assert response.status_code == 302
    assert client.get("/account/").status_code == 200
    client.post("/logout")
    assert client.get("/account/").status_code == 302


def test_verification_link_is_single_use_and_expires(client, db, mailbox, clock):
    signup(client)
    link = path_of(mailbox.last_link("casey@example.com", "/verify/"))
    assert client.get(link).status_code == 302
    reused = client.get(link)
    assert reused.status_code == 400 and b"already been used" in reused.data

    signup(client, email="late@example.com")
    late = path_of(mailbox.last_link("late@example.com", "/verify/"))
    clock.advance(timedelta(days=3))
    expired = client.get(late)
    assert expired.status_code == 400 and b"expired" in expired.data
    assert client.get("/verify/not-a-token").status_code == 400


def test_tokens_are_stored_hashed(client, db, mailbox):
    signup(client)
    link = mailbox.last_link("casey@example.com", "/verify/")
    raw = link.rsplit("/", 1)[1]
    assert len(raw) >= 22  # >= 128 bits in URL-safe base64
    stored = db.session.scalars(select(OneTimeToken.token_hash)).all()
    assert stored and raw not in stored and all(len(h) == 64 for h in stored)


def test_duplicate_email_gives_same_answer_and_notifies_owner(client, db, mailbox):
    make_user(client.application, email="taken@example.com")
    first = signup(client, email="new@example.com")
    second = signup(client, email="taken@example.com")
    assert first.status_code == second.status_code == 200
    assert first.data.replace(b"new@example.com", b"") == second.data.replace(
        b"taken@example.com", b"")
    assert db.session.scalar(select(User).where(User.email == "taken@example.com")) is not None
    mails = mailbox.deliver()
    subjects = {str(m["To"]): str(m["Subject"]) for m in mails}
    assert subjects["taken@example.com"] == "You already have an account"


def test_signup_rejects_weak_password_and_bad_email_keeping_input(client, db):
    response = signup(client, password="short")
    assert response.status_code == 422
    assert b"at least 10 characters" in response.data
    assert b'value="casey@example.com"' in response.data  # what was typed is kept
    response = signup(client, email="not-an-email")
    assert response.status_code == 422
    assert b"valid email" in response.data or b"@-sign" in response.data
    response = signup(client, password="password1234")
    assert response.status_code == 422 and b"too easy" in response.data
    assert db.session.scalar(select(User)) is None


def test_signup_requires_consent(client, db):
    response = client.post("/signup", data={"name": "C", "email": "c@example.com",
                                            "password": "a-good-long-password"})
    assert response.status_code == 422
    assert b"privacy notice" in response.data
    assert db.session.scalar(select(User)) is None


def test_wrong_password_and_unknown_email_answer_the_same(client, app):
    make_user(app, email="known@example.com")
    wrong = client.post("/login", data={"email": "known@example.com", "password": "nope-nope"})
    unknown = client.post("/login", data={"email": "ghost@example.com", "password": "nope-nope"})
    assert wrong.status_code == unknown.status_code == 401
    assert b"Wrong email or password" in wrong.data and b"Wrong email or password" in unknown.data


def test_login_is_throttled_per_account(app, client):
    app.config["LOGIN_LIMIT_PER_ACCOUNT"] = "3 per 15 minutes"
    make_user(app, email="target@example.com")
    codes = [client.post("/login", data={"email": "target@example.com",
                                         "password": "wrong-guess"}).status_code
             for _ in range(4)]
    assert codes == [401, 401, 401, 429]
    # The right password is refused too while throttled...
    assert client.post("/login", data={"email": "target@example.com",
                                       "password": PASSWORD}).status_code == 429
    # ...but another account from the same address is not affected.
    make_user(app, email="other@example.com")
    assert client.post("/login", data={"email": "other@example.com",
                                       "password": PASSWORD}).status_code == 302


def test_login_is_throttled_per_ip(app, client):
    app.config["LOGIN_LIMIT_PER_IP"] = "4 per 15 minutes"
    codes = [client.post("/login", data={"email": f"u{i}@example.com",
                                         "password": "wrong-guess"}).status_code
             for i in range(5)]
    assert codes[:4] == [401] * 4 and codes[4] == 429


def test_password_reset_flow(client, app, db, mailbox, clock):
    user = make_user(app, email="reset@example.com")
    response = client.post("/password/forgot", data={"email": "reset@example.com"})
    unknown = client.post("/password/forgot", data={"email": "nobody@example.com"})
    assert response.status_code == unknown.status_code == 200
    assert response.data == unknown.data
    link = path_of(mailbox.last_link("reset@example.com", "/password/reset/"))
    assert client.get(link).status_code == 200
    weak = client.post(link, data={"password": "short"})
    assert weak.status_code == 422
    done = client.post(link, data={"password": NEW_PASSWORD})
    assert done.status_code == 302
    assert client.post(link, data={"password": NEW_PASSWORD + "x"}).status_code == 422
    assert client.post("/login", data={"email": "reset@example.com",
                                       "password": NEW_PASSWORD}).status_code == 302
    db.session.refresh(user)
    assert user.session_version == 2
    assert mailbox.messages("nobody@example.com") == []


def test_reset_link_expires_after_60_minutes(client, app, mailbox, clock):
    make_user(app, email="slow@example.com")
    client.post("/password/forgot", data={"email": "slow@example.com"})
    link = path_of(mailbox.last_link("slow@example.com", "/password/reset/"))
    clock.advance(timedelta(minutes=61))
    assert client.get(link).status_code == 400
    response = client.post(link, data={"password": NEW_PASSWORD})
    assert response.status_code == 422 and b"expired" in response.data


def test_change_password_revokes_other_sessions(app, db):
    make_user(app, email="two@example.com")
    laptop, phone = app.test_client(), app.test_client()
    for c in (laptop, phone):
        assert c.post("/login", data={"email": "two@example.com",
                                      "password": PASSWORD}).status_code == 302
    wrong = laptop.post("/account/password", data={"pw-current_password": "bad-password",
                                                   "pw-password": NEW_PASSWORD})
    assert wrong.status_code == 422 and b"current password is wrong" in wrong.data
    ok = laptop.post("/account/password", data={"pw-current_password": PASSWORD,
                                                "pw-password": NEW_PASSWORD})
    assert ok.status_code == 302
    assert laptop.get("/account/").status_code == 200  # this device stays logged in
    assert phone.get("/account/").status_code == 302  # the other one is logged out


def test_remember_cookie_is_hardened_and_revoked_by_logout_everywhere(app, db):
    make_user(app, email="remember@example.com")
    browser = app.test_client()
    response = browser.post("/login", data={"email": "remember@example.com",
                                            "password": PASSWORD, "remember": "y"})
    cookies = response.headers.getlist("Set-Cookie")
    remember = next(c for c in cookies if c.startswith("remember_token="))
    session = next(c for c in cookies if c.startswith("session="))
    for cookie in (remember, session):
        assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    # A fresh browser with only the remember cookie is logged in...
    other = app.test_client()
    other.set_cookie("remember_token", remember.split(";")[0].split("=", 1)[1])
    assert other.get("/account/").status_code == 200
    # ...until the user logs out everywhere.
    browser.post("/account/logout-everywhere")
    stale = app.test_client()
    stale.set_cookie("remember_token", remember.split(";")[0].split("=", 1)[1])
    assert stale.get("/account/").status_code == 302


def test_change_email_is_reverified(app, client, db, mailbox):
    user = make_user(app, email="old@example.com")
    client.post("/login", data={"email": "old@example.com", "password": PASSWORD})
    bad = client.post("/account/email", data={"em-new_email": "nope", "em-password": PASSWORD})
    assert bad.status_code == 422
    response = client.post("/account/email", data={"em-new_email": "new@example.com",
                                                    "em-password": PASSWORD})
    assert response.status_code == 302
    db.session.refresh(user)
    assert user.email == "old@example.com"  # unchanged until confirmed
    link = path_of(mailbox.last_link("new@example.com", "/email/confirm/"))
    assert client.get(link).status_code == 302
    db.session.refresh(user)
    assert user.email == "new@example.com"
    assert any(m["Subject"] == "Your email address was changed"
               for m in mailbox.deliver() if "old@example.com" in str(m["To"]))


def test_admin_invites_therapist_who_sets_password(app, client, db, mailbox):
    from clinic_app.services.accounts import invite_therapist

    with app.app_context():
        invite_therapist(db.session, name="Tess Therapist", email="tess@example.com",
                         now=app.extensions["clock"].now())
        db.session.commit()
    user = db.session.scalar(select(User).where(User.email == "tess@example.com"))
    assert user.role == "therapist" and user.password_hash is None and user.therapist
    link = path_of(mailbox.last_link("tess@example.com", "/invite/"))
    assert client.post(link, data={"password": "short"}).status_code == 422
    assert client.post(link, data={"password": NEW_PASSWORD}).status_code == 302
    client.post("/logout")
    assert client.post("/login", data={"email": "tess@example.com",
                                       "password": NEW_PASSWORD}).status_code == 302
    assert client.get(link).status_code == 400  # single use


def test_open_redirect_is_refused(app, client):
    make_user(app, email="next@example.com")
    response = client.post("/login?next=https://evil.example/", data={
        "email": "next@example.com", "password": PASSWORD})
    assert response.status_code == 302
    assert "evil.example" not in response.headers["Location"]


def test_login_throttle_can_live_in_redis(tmp_path, clock):
    """Several web workers share the throttle through Redis (CLINIC_RATELIMIT_STORAGE_URL)."""
    import uuid

    import redis

    from clinic_app import create_app
    from clinic_app.extensions import db as _db

    email = f"{uuid.uuid4().hex}@example.com"  # a fresh key: Redis outlives the test
    app = create_app({
        "TESTING": True, "WTF_CSRF_ENABLED": False, "CLOCK": clock,
        "INSTANCE_PATH": str(tmp_path), "DATABASE_URL": f"sqlite:///{tmp_path}/db.sqlite3",
        "RATELIMIT_STORAGE_URL": "redis://127.0.0.1:6379/15",
        "LOGIN_LIMIT_PER_ACCOUNT": "2 per 15 minutes",
    })
    with app.app_context():
        _db.create_all()
    codes = [app.test_client().post("/login", data={"email": email, "password": "wrong-one"})
             .status_code for _ in range(3)]
    assert codes == [401, 401, 429]
    # The counter is in Redis, where every worker process sees it.
    keys = redis.Redis(host="127.0.0.1", port=6379, db=15).keys(f"*{email}*")
    assert keys, "no throttle counter in Redis"
