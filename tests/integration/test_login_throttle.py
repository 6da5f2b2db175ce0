"""Log-in throttles that cannot lock the owner out (issue 9 item 4): one budget per account
for the web and the API, 429 with Retry-After, the emailed one-time sign-in link, and the
per-IP budget keyed on the client's address behind CLINIC_TRUSTED_PROXIES proxies."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from clinic_app import create_app
from clinic_app.config import ConfigError
from clinic_app.extensions import db as _db
from clinic_app.models import OneTimeToken
from tests.conftest import path_of
from tests.factories import PASSWORD
from tests.factories import make_user

WRONG = "wrong-password-guess"


def web_login(client, email, password=WRONG, **extra):
    return client.post("/login", data={"email": email, "password": password}, **extra)


def api_login(client, email, password=WRONG, **extra):
    return client.post("/api/v1/auth/tokens", json={"email": email, "password": password},
                       **extra)


def _retry_after(response) -> int:
    value = response.headers.get("Retry-After")
    assert value is not None, "429 without Retry-After"
    return int(value)


def test_web_and_api_share_one_budget_per_account(app, client):
    app.config["LOGIN_LIMIT_PER_ACCOUNT"] = "3 per 15 minutes"
    make_user(app, email="shared@example.com")
    assert web_login(client, "shared@example.com").status_code == 401
    assert api_login(client, "shared@example.com").status_code == 401
    assert web_login(client, "Shared@Example.com ").status_code == 401  # same account
    # The budget of 3 is spent, whichever door is tried next.
    assert api_login(client, "shared@example.com").status_code == 429
    assert web_login(client, "shared@example.com").status_code == 429
    assert api_login(client, "shared@example.com", PASSWORD).status_code == 429


def test_throttled_answers_carry_retry_after(app, client):
    app.config["LOGIN_LIMIT_PER_ACCOUNT"] = "1 per 15 minutes"
    make_user(app, email="wait@example.com")
    web_login(client, "wait@example.com")
    page = web_login(client, "wait@example.com")
    assert page.status_code == 429 and 1 <= _retry_after(page) <= 900
    assert b"Too many failed log-ins for this account" in page.data
    api = api_login(client, "wait@example.com")
    assert api.status_code == 429 and 1 <= _retry_after(api) <= 900
    assert api.json["error"]["code"] == "rate_limited"
    assert "minutes" in api.json["error"]["message"]


def test_unknown_accounts_are_throttled_the_same(app, client):
    app.config["LOGIN_LIMIT_PER_ACCOUNT"] = "2 per 15 minutes"
    make_user(app, email="real@example.com")
    known = [web_login(client, "real@example.com").status_code for _ in range(3)]
    unknown = [web_login(client, "ghost@example.com").status_code for _ in range(3)]
    assert known == unknown == [401, 401, 429]


def test_right_passwords_do_not_spend_the_budget(app):
    app.config["LOGIN_LIMIT_PER_ACCOUNT"] = "2 per 15 minutes"
    make_user(app, email="often@example.com")
    for _ in range(4):
        assert web_login(app.test_client(), "often@example.com", PASSWORD).status_code == 302
        assert api_login(app.test_client(), "often@example.com", PASSWORD).status_code == 201
    client = app.test_client()
    assert [web_login(client, "often@example.com").status_code for _ in range(3)] == [
        401, 401, 429]


def test_a_right_password_for_an_unverified_address_costs_nothing(app, client):
    app.config["LOGIN_LIMIT_PER_ACCOUNT"] = "1 per 15 minutes"
    make_user(app, email="unverified@example.com", verified=False)
    for _ in range(3):
        response = web_login(client, "unverified@example.com", PASSWORD)
        assert response.status_code == 401 and b"confirm your email" in response.data
    assert web_login(client, "unverified@example.com").status_code == 401
    assert web_login(client, "unverified@example.com").status_code == 429


def test_the_owner_gets_in_by_sign_in_link_when_the_budget_is_spent(app, client, db, mailbox):
    app.config["LOGIN_LIMIT_PER_ACCOUNT"] = "2 per 15 minutes"
    make_user(app, email="owner@example.com")
    for _ in range(2):
        web_login(client, "owner@example.com")
    page = web_login(client, "owner@example.com", PASSWORD)
    assert page.status_code == 429
    assert b"Email me a sign-in link" in page.data and b'action="/login/link"' in page.data
    sent = client.post("/login/link", data={"email": "owner@example.com"})
    assert sent.status_code == 200 and b"on its way" in sent.data
    message = next(m for m in mailbox.deliver() if "owner@example.com" in str(m["To"]))
    assert message["Subject"] == "Your sign-in link"
    link = path_of(mailbox.last_link("owner@example.com", "/login/link/"))
    # Opening the link changes nothing (mail scanners follow links)...
    assert client.get(link).status_code == 200
    assert client.get(link).status_code == 200
    assert client.get("/account/").status_code == 302
    # ...the button logs in, despite the spent password budget.
    done = client.post(link)
    assert done.status_code == 302 and done.headers["Location"].endswith("/appointments")
    assert client.get("/account/").status_code == 200
    # Single use.
    other = app.test_client()
    assert other.get(link).status_code == 400
    reused = other.post(link)
    assert reused.status_code == 400 and b"already been used" in reused.data
    assert other.get("/account/").status_code == 302


def test_sign_in_link_answers_the_same_for_unknown_addresses(app, client, mailbox):
    make_user(app, email="here@example.com")
    known = client.post("/login/link", data={"email": "here@example.com"})
    unknown = client.post("/login/link", data={"email": "nobody@example.com"})
    bad = client.post("/login/link", data={"email": "not-an-address"})
    assert known.status_code == unknown.status_code == bad.status_code == 200
    assert known.data == unknown.data == bad.data
    mailbox.deliver()
    assert mailbox.messages("nobody@example.com") == []
    assert len(mailbox.messages("here@example.com")) == 1


def test_sign_in_link_expires_after_15_minutes_and_is_stored_hashed(app, client, db, mailbox,
                                                                    clock):
    make_user(app, email="late@example.com")
    client.post("/login/link", data={"email": "late@example.com"})
    link = path_of(mailbox.last_link("late@example.com", "/login/link/"))
    raw = link.rsplit("/", 1)[1]
    stored = db.session.scalars(select(OneTimeToken.token_hash)
                                .where(OneTimeToken.purpose == "sign_in")).all()
    assert len(stored) == 1 and raw not in stored[0]
    clock.advance(timedelta(minutes=16))
    assert client.get(link).status_code == 400
    expired = client.post(link)
    assert expired.status_code == 400 and b"expired" in expired.data
    assert client.get("/account/").status_code == 302
    assert client.post("/login/link/not-a-token").status_code == 400


def test_no_sign_in_link_for_a_deactivated_account(app, client, db, mailbox):
    user = make_user(app, email="gone@example.com")
    client.post("/login/link", data={"email": "gone@example.com"})
    link = path_of(mailbox.last_link("gone@example.com", "/login/link/"))
    user.is_active = False
    db.session.commit()
    assert client.post(link).status_code == 400
    assert client.get("/account/").status_code == 302
    client.post("/login/link", data={"email": "gone@example.com"})
    mailbox.deliver()
    assert len(mailbox.messages("gone@example.com")) == 1  # only the one sent before


def test_sign_in_links_per_address_are_limited(app, client, mailbox):
    make_user(app, email="flood@example.com")
    codes = [client.post("/login/link", data={"email": "flood@example.com"}).status_code
             for _ in range(6)]
    assert codes == [200] * 5 + [429]
    limited = client.post("/login/link", data={"email": "flood@example.com"})
    assert 1 <= _retry_after(limited) <= 3600


def test_flask_limiter_429s_carry_retry_after_too(app, client):
    app.config["LOGIN_LIMIT_PER_IP"] = "2 per 15 minutes"
    for _ in range(2):
        assert client.post("/password/forgot", data={"email": "a@example.com"}).status_code == 200
    page = client.post("/password/forgot", data={"email": "a@example.com"})
    assert page.status_code == 429 and 1 <= _retry_after(page) <= 900
    signup = {"name": "A", "email": "a@example.com", "password": "a-good-long-password"}
    for _ in range(2):
        assert client.post("/api/v1/auth/signup", json=signup).status_code == 201
    api = client.post("/api/v1/auth/signup", json=signup)
    assert api.status_code == 429 and 1 <= _retry_after(api) <= 900
    assert api.json["error"]["code"] == "rate_limited"
    # Answers below the limit do not carry the header.
    assert "Retry-After" not in client.get("/login").headers


def _ip_budget_codes(app, forwarded_for: list[str]) -> list[int]:
    """Wrong passwords for distinct accounts, each from the given X-Forwarded-For."""
    return [web_login(app.test_client(), f"ip{i}@example.com",
                      headers={"X-Forwarded-For": address}).status_code
            for i, address in enumerate(forwarded_for)]


def test_per_ip_budget_keys_on_the_client_behind_a_trusted_proxy(app_config):
    app = create_app({**app_config, "TRUSTED_PROXIES": 1, "LOGIN_LIMIT_PER_IP": "2 per 15 minutes"})
    with app.app_context():
        if app.config["DATABASE_URL"].startswith("sqlite"):
            _db.create_all()
        # Two clients behind the same proxy have a budget each...
        codes = _ip_budget_codes(app, ["203.0.113.7", "203.0.113.7", "198.51.100.9",
                                       "198.51.100.9", "203.0.113.7"])
        assert codes == [401, 401, 401, 401, 429]
        # ...and a client cannot pose as someone else by adding its own header in front:
        # with one trusted proxy only the address the proxy appended counts.
        spoofed = web_login(app.test_client(), "ip9@example.com",
                            headers={"X-Forwarded-For": "192.0.2.1, 203.0.113.7"})
        assert spoofed.status_code == 429


def test_forwarded_for_is_ignored_without_trusted_proxies(app):
    app.config["LOGIN_LIMIT_PER_IP"] = "2 per 15 minutes"
    codes = _ip_budget_codes(app, ["203.0.113.7", "198.51.100.9", "192.0.2.44"])
    assert codes == [401, 401, 429]  # one budget: the header is not believed


@pytest.mark.parametrize("name,value", [("TRUSTED_PROXIES", "-1"), ("TRUSTED_PROXIES", "two"),
                                        ("LOGIN_LIMIT_PER_ACCOUNT", "lots")])
def test_bad_throttle_settings_stop_start_up(tmp_path, name, value):
    with pytest.raises(ConfigError, match=f"CLINIC_{name}"):
        create_app({"TESTING": True, "INSTANCE_PATH": str(tmp_path),
                    "DATABASE_URL": f"sqlite:///{tmp_path}/db.sqlite3", name: value})
