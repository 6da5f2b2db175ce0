"""Configuration, health check, security headers, CSRF, error pages, the dev mailbox."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from clinic_app import create_app
from clinic_app.config import ConfigError
from clinic_app.models import User
from tests.factories import PASSWORD
from tests.factories import make_user


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("CLINIC_TIMEZONE", "Mars/Olympus", "CLINIC_TIMEZONE"),
        ("CLINIC_MAIL_BACKEND", "pigeon", "CLINIC_MAIL_BACKEND"),
        ("CLINIC_SMTP_TLS", "maybe", "CLINIC_SMTP_TLS"),
        ("CLINIC_SMTP_PORT", "seventy", "CLINIC_SMTP_PORT"),
        ("CLINIC_SMTP_PORT", "70000", "CLINIC_SMTP_PORT"),
        ("CLINIC_BASE_URL", "ftp://clinic", "CLINIC_BASE_URL"),
        ("CLINIC_DATABASE_URL", "mysql://x", "CLINIC_DATABASE_URL"),
        ("CLINIC_SECRET_KEY", "short", "CLINIC_SECRET_KEY"),
        ("CLINIC_ENV", "staging", "CLINIC_ENV"),
    ],
)
def test_bad_configuration_names_the_variable(monkeypatch, tmp_path, variable, value, expected):
    monkeypatch.setenv("CLINIC_INSTANCE_PATH", str(tmp_path))
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as info:
        create_app()
    message = str(info.value)
    assert message.startswith(expected) and "\n" not in message


def test_production_requires_secret_and_database(monkeypatch, tmp_path):
    monkeypatch.setenv("CLINIC_INSTANCE_PATH", str(tmp_path))
    monkeypatch.setenv("CLINIC_ENV", "production")
    with pytest.raises(ConfigError, match="CLINIC_DATABASE_URL"):
        create_app()
    monkeypatch.setenv("CLINIC_DATABASE_URL", f"sqlite:///{tmp_path}/x.db")
    with pytest.raises(ConfigError, match="CLINIC_SECRET_KEY"):
        create_app()


def test_environment_is_read_and_embedded_defaults_apply(monkeypatch, tmp_path):
    monkeypatch.setenv("CLINIC_INSTANCE_PATH", str(tmp_path))
    monkeypatch.setenv("CLINIC_TIMEZONE", "America/New_York")
    monkeypatch.setenv("CLINIC_SMTP_PORT", "2525")
    monkeypatch.setenv("CLINIC_BASE_URL", "https://clinic.example/")
    app = create_app()
    assert app.config["TIMEZONE"] == "America/New_York"
    assert app.config["SMTP_PORT"] == 2525
    assert app.config["BASE_URL"] == "https://clinic.example"
    assert app.config["SESSION_COOKIE_SECURE"] and app.config["REMEMBER_COOKIE_SECURE"]
    assert app.config["DATABASE_URL"] == f"sqlite:///{tmp_path}/clinic.sqlite3"
    # The generated secret is kept, so sessions survive a restart.
    secret = app.config["SECRET_KEY"]
    assert len(secret) >= 32 and (tmp_path / "secret_key").read_text() == secret
    assert create_app().config["SECRET_KEY"] == secret


def test_healthz_answers_when_the_database_does(client):
    response = client.get("/healthz")
    assert response.status_code == 200 and response.json["database"] == "ok"


def test_healthz_fails_when_the_database_does_not(tmp_path):
    app = create_app({"TESTING": True, "INSTANCE_PATH": str(tmp_path),
                      "DATABASE_URL": f"sqlite:///{tmp_path}/missing-dir/db.sqlite3"})
    response = app.test_client().get("/healthz")
    assert response.status_code == 503 and response.json["status"] == "error"


def test_security_headers_and_strict_csp(client):
    response = client.get("/")
    csp = response.headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "script-src 'self'" in csp
    assert "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert b"<script>" not in response.data and b"style=" not in response.data


def test_assets_are_served_locally(client):
    page = client.get("/").data.decode()
    assert "//cdn" not in page and "https://" not in page.split("<footer")[0]
    assert client.get("/static/vendor/pico.min.css").status_code == 200
    assert client.get("/static/vendor/htmx.min.js").status_code == 200


def test_missing_csrf_token_is_refused(app, db):
    app.config["WTF_CSRF_ENABLED"] = True
    make_user(app, email="csrf@example.com")
    browser = app.test_client()
    response = browser.post("/login", data={"email": "csrf@example.com", "password": PASSWORD})
    assert response.status_code == 400
    assert b"form expired" in response.data
    # With the token from the page it works.
    page = browser.get("/login").data.decode()
    token = page.split('name="csrf_token" type="hidden" value="')[1].split('"')[0]
    response = browser.post("/login", data={"email": "csrf@example.com", "password": PASSWORD,
                                            "csrf_token": token})
    assert response.status_code == 302


def test_friendly_error_pages(client):
    response = client.get("/no-such-page")
    assert response.status_code == 404 and b"Page not found" in response.data
    api = client.get("/api/v1/no-such-thing")
    assert api.status_code == 404
    assert api.json["error"]["code"] == "not_found"


def test_unexpected_errors_give_a_friendly_500(app):
    @app.get("/boom-for-test")
    def boom():  # pragma: no cover - the body is the point
        raise RuntimeError("boom")

    response = app.test_client().get("/boom-for-test")
    assert response.status_code == 500
    assert b"Something went wrong" in response.data and b"boom" not in response.data


def test_role_pages_need_the_role(app, client):
    make_user(app, email="plain@example.com")
    assert client.get("/dev/mailbox").status_code == 302  # log in first
    client.post("/login", data={"email": "plain@example.com", "password": PASSWORD})
    assert client.get("/dev/mailbox").status_code == 403


def test_dev_mailbox_lists_messages_with_clickable_links(app, client, db, mailbox):
    make_user(app, role="admin", email="boss@example.com")
    client.post("/signup", data={"name": "Casey", "email": "casey@example.com",
                                 "password": "a-good-long-password", "consent": "y"})
    mailbox.deliver()
    client.post("/login", data={"email": "boss@example.com", "password": PASSWORD})
    listing = client.get("/dev/mailbox")
    assert listing.status_code == 200 and b"Confirm your email address" in listing.data
    ident = mailbox.box.messages()[0][0]
    page = client.get(f"/dev/mailbox/{ident}")
    assert page.status_code == 200
    assert b'<a href="http://clinic.test/verify/' in page.data
    assert client.get("/dev/mailbox/nope").status_code == 404


def test_dev_mailbox_is_hidden_outside_the_embedded_mode(app, client, db):
    app.config["EMBEDDED"] = False
    make_user(app, role="admin", email="boss2@example.com")
    client.post("/login", data={"email": "boss2@example.com", "password": PASSWORD})
    assert client.get("/dev/mailbox").status_code == 404


def test_user_timestamps_are_aware_utc(app, db):
    make_user(app, email="tz@example.com")
    db.session.expire_all()
    user = db.session.scalar(select(User).where(User.email == "tz@example.com"))
    assert user.created_at.utcoffset().total_seconds() == 0
