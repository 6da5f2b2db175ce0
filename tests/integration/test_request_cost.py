"""What one request costs: SQL statements per request (pinned so they do not creep back),
the one-statement token and log-in session look-ups (and everything they still refuse),
the settings row read once per request, one statement for a booking's names."""

from __future__ import annotations

import gc
from contextlib import contextmanager
from datetime import timedelta

import pytest
from sqlalchemy import event
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy.orm import Session

from clinic_app.extensions import db as _db
from clinic_app.extensions import limiter
from clinic_app.models import CatalogStamp
from clinic_app.models import ClinicSettings
from clinic_app.services.settings import get_settings
from tests.factories import make_user
from tests.factories.accounts import login
from tests.factories.accounts import token_for
from tests.factories.booking import make_booking
from tests.factories.booking import make_clinic
from tests.factories.schedule import local

CONTROL = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE")


@contextmanager
def statements(engine):
    """The SQL statements sent while the block runs, transaction control left out."""
    seen: list[str] = []

    def count(conn, cursor, statement, parameters, context, executemany):  # noqa: ANN001
        if not statement.lstrip().upper().startswith(CONTROL):
            seen.append(" ".join(statement.split()))

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", count)


@contextmanager
def limiter_calls():
    """Every call into the rate-limit storage (Redis round trips in production)."""
    storage = limiter.storage
    calls: list[str] = []
    originals = {}
    for name in ("incr", "get", "get_expiry", "check", "clear", "get_moving_window",
                 "acquire_entry", "get_sliding_window", "acquire_sliding_window_entry"):
        if hasattr(storage, name):
            originals[name] = getattr(storage, name)

            def spy(*args, _name=name, **kwargs):  # noqa: ANN001, ANN202
                calls.append(_name)
                return originals[_name](*args, **kwargs)

            setattr(storage, name, spy)
    try:
        yield calls
    finally:
        for name in originals:
            delattr(storage, name)


@pytest.fixture
def clinic(app, db):
    clinic = make_clinic(app)
    get_settings(db.session)
    # The catalogue stamp row the migrations create (tests build tables with create_all).
    if db.session.scalar(select(func.count()).select_from(CatalogStamp)) == 0:
        db.session.add(CatalogStamp(id=1, stamp=4242))
    db.session.commit()
    return clinic


def availability_url(clinic, days=7):
    return (f"/api/v1/availability?service_id={clinic.service.id}&from=2026-11-24"
            f"&to={(local(2026, 11, 24, 0) + timedelta(days=days - 1)).date()}")


@pytest.mark.real_db  # counts every statement: the savepoint mode would add SAVEPOINTs
def test_public_availability_request_is_one_statement(app, client, db, clinic):
    make_booking(app, clinic, local(2026, 11, 24, 10))
    url = availability_url(clinic)
    assert client.get(url).status_code == 200  # loads the catalogue once per process
    with statements(db.engine) as seen, limiter_calls() as storage:
        response = client.get(url)
    assert response.status_code == 200 and response.get_json()["slots"]
    # The catalogue stamp and the bookings, in one statement: no session, user, token,
    # settings or rate-limit work for a public read.
    assert len(seen) == 1, seen
    assert "FROM bookings" in seen[0] and "catalog_stamp" in seen[0]
    assert storage == []
    # A bearer token (the apps send one everywhere) changes nothing for a public endpoint;
    # nor does a bad one: the endpoint does not read it.
    headers = token_for(app, clinic.client)
    with statements(db.engine) as seen:
        assert client.get(url, headers=headers).status_code == 200
        assert client.get(url, headers={"Authorization": "Bearer nope"}).status_code == 200
    assert len(seen) == 2, seen
    # Bad input is still the error JSON, and costs no statement.
    bad_url = f"/api/v1/availability?service_id={clinic.service.id}&from=x&to=y"
    with statements(db.engine) as seen:
        bad = client.get(bad_url)
    assert bad.status_code == 422 and bad.get_json()["error"]["code"] == "validation_failed"
    assert seen == []


@pytest.mark.real_db  # counts every statement: the savepoint mode would add SAVEPOINTs
def test_authenticated_api_requests_statement_counts(app, client, db, clinic):
    headers = token_for(app, clinic.client)
    booking_id = make_booking(app, clinic, local(2026, 11, 25, 10)).id
    names = (clinic.t1.name, clinic.room.name, clinic.service.name)
    db.session.remove()  # the request must load everything itself
    with statements(db.engine) as seen:
        shown = client.get(f"/api/v1/bookings/{booking_id}", headers=headers)
    assert shown.status_code == 200
    body = shown.get_json()
    assert (body["therapist_name"], body["room"], body["service_name"]) == names
    # Token with its user, the booking, its service/room/therapist/therapist's user, the
    # settings (the clinic's zone): four statements.
    assert len(seen) == 4, seen
    assert "FROM api_tokens JOIN users" in seen[0]
    assert not any(s.startswith("SELECT users.") and "JOIN" not in s for s in seen), seen

    with statements(db.engine) as seen:
        cancelled = client.post(f"/api/v1/bookings/{booking_id}/cancel", headers=headers,
                                json={"reason": "Away"})
    assert cancelled.status_code == 200
    body = cancelled.get_json()
    assert body["status"] == "cancelled"
    assert (body["therapist_name"], body["room"], body["service_name"]) == names
    # Token+user, the booking, its names, the row lock, settings, the update, the outbox
    # (retire, key look-up, insert): nine, where it was fourteen (SQLite inserts the two
    # outbox rows one statement each). The booking service may lower this; not raise it.
    limit = 10 if db.engine.dialect.name == "sqlite" else 9
    assert len(seen) <= limit, "\n".join(s[:90] for s in seen)
    assert sum("FROM clinic_settings" in s for s in seen) == 1, seen

    # A refused request stops after the one token statement.
    with statements(db.engine) as seen:
        refused = client.get(f"/api/v1/bookings/{booking_id}",
                             headers={"Authorization": "Bearer not-a-token"})
    assert refused.status_code == 401
    assert refused.get_json()["error"]["code"] == "invalid_token"
    assert len(seen) == 1, seen


def test_token_look_up_still_refuses_what_it_refused(app, client, db, clock, clinic):
    url = "/api/v1/bookings"
    user = make_user(app)
    headers = token_for(app, user)
    assert client.get(url, headers=headers).status_code == 200
    # Deactivated: refused.
    user.is_active = False
    db.session.commit()
    refused = client.get(url, headers=headers)
    assert refused.status_code == 401 and refused.get_json()["error"]["code"] == "invalid_token"
    user.is_active = True
    db.session.commit()
    assert client.get(url, headers=headers).status_code == 200
    # "Log out everywhere" (the session version is bumped): tokens issued before are dead.
    user.session_version += 1
    db.session.commit()
    assert client.get(url, headers=headers).status_code == 401
    fresh = token_for(app, user)
    assert client.get(url, headers=fresh).status_code == 200
    # Revoked, expired, unknown, malformed.
    assert client.delete("/api/v1/auth/tokens/current", headers=fresh).status_code == 204
    assert client.get(url, headers=fresh).status_code == 401
    later = token_for(app, user)
    clock.advance(timedelta(days=31))
    assert client.get(url, headers=later).status_code == 401
    assert client.get(url, headers={"Authorization": "Bearer x" * 3}).status_code == 401
    missing = client.get(url, headers={"Authorization": "Basic abc"})
    assert missing.status_code == 401 and missing.get_json()["error"]["code"] == (
        "not_authenticated")


def test_login_session_look_up_still_refuses_a_deactivated_user(app, client, db):
    user = make_user(app)
    login(client, user)
    assert client.get("/account/").status_code == 200
    user.is_active = False
    db.session.commit()
    page = client.get("/account/")
    assert page.status_code == 302 and "/login" in page.headers["Location"]


@pytest.mark.real_db  # another connection commits a change
def test_settings_row_is_read_once_per_session_even_when_nobody_holds_it(app, db):
    get_settings(db.session).name = "Before"
    db.session.commit()
    with app.app_context():
        session = _db.session
        with statements(_db.engine) as seen:
            assert get_settings(session).name == "Before"
            gc.collect()  # an unreferenced row would be gone from the identity map now
            assert get_settings(session).timezone
            assert get_settings(session).name == "Before"
        assert sum("FROM clinic_settings" in s for s in seen) == 1, seen
        # Not a cache across transactions: once this one ends, another session's committed
        # change is what the next transaction of the same session sees.
        session.rollback()
        with Session(bind=_db.engine) as other:
            row = other.scalar(select(ClinicSettings))
            row.name = "After"
            other.commit()
        assert get_settings(session).name == "After"
        _db.session.remove()


def test_a_moved_booking_answers_with_its_new_therapist_and_room(app, client, db, clinic):
    headers = token_for(app, clinic.client)
    made = client.post("/api/v1/bookings", headers=headers, json={
        "service_id": clinic.service.id, "start": "2026-11-24T10:00:00+00:00",
        "therapist_id": clinic.t1.id})
    assert made.status_code == 201
    booking = made.get_json()
    assert booking["therapist_name"] == clinic.t1.name
    # Someone else holds t1's first room then, so the move takes t2 and a room of its own.
    moved = client.post(f"/api/v1/bookings/{booking['id']}/reschedule", headers=headers,
                        json={"start": "2026-11-25T14:00:00+00:00",
                              "therapist_id": clinic.t2.id})
    assert moved.status_code == 200, moved.get_json()
    body = moved.get_json()
    assert body["therapist_id"] == clinic.t2.id and body["therapist_name"] == clinic.t2.name
    room = next(r for r in clinic.rooms if r.id == body["room_id"])
    assert body["room"] == room.name
    shown = client.get(f"/api/v1/bookings/{booking['id']}", headers=headers).get_json()
    assert shown["therapist_name"] == clinic.t2.name and shown["room"] == room.name
    # Not the client's: 404, as before.
    stranger = token_for(app, make_user(app))
    assert client.get(f"/api/v1/bookings/{booking['id']}", headers=stranger).status_code == 404


def test_the_limiter_check_is_skipped_only_where_it_could_not_limit(app):
    """For every endpoint, where the app skips Flask-Limiter's before-request check, the
    check itself (its own filter, as the hook runs it) finds no limit to apply."""
    from clinic_app.throttle import middleware_may_limit

    filter_limits = limiter._Limiter__filter_limits  # the private filter the hook uses
    for endpoint in app.view_functions:
        blueprint = endpoint.rpartition(".")[0] or None
        with app.test_request_context("/"):
            found = filter_limits(endpoint, blueprint, None, True)
        if not middleware_may_limit(app, endpoint, blueprint):
            assert found == [], endpoint


@pytest.fixture
def default_limit():
    """A default limit for every route, as ``RATELIMIT_DEFAULT`` sets one (the limiter is
    one object shared by every app, so it is taken away again afterwards)."""
    from flask_limiter import Limit
    from flask_limiter.util import get_remote_address

    manager = limiter.limit_manager
    assert manager.default_limits == []  # the app declares none
    manager.set_default_limits([Limit("2 per minute", get_remote_address).bind(limiter)])
    try:
        yield
    finally:
        manager.set_default_limits([])


def test_a_default_limit_is_still_applied_by_the_before_request_check(default_limit, app,
                                                                      client, clinic):
    codes = [client.get("/api/v1/services").status_code for _ in range(3)]
    assert codes == [200, 200, 429]
    limited = client.get("/api/v1/services")
    assert limited.get_json()["error"]["code"] == "rate_limited"
    assert int(limited.headers["Retry-After"]) >= 1


def test_decorated_limits_still_count_with_the_check_skipped(app, client):
    # POST /api/v1/auth/signup carries its own per-address limit (@limiter.limit).
    app.config["LOGIN_LIMIT_PER_IP"] = "3 per 15 minutes"
    statuses = [client.post("/api/v1/auth/signup", json={
        "name": "N", "email": f"new{i}@example.com", "password": "a-good-long-password",
        "consent": True}).status_code for i in range(4)]
    assert statuses == [201, 201, 201, 429], statuses
    # The public read next to it is not limited at all.
    assert all(client.get("/api/v1/services").status_code == 200 for _ in range(5))


def test_security_headers_in_one_pass_and_a_view_keeps_its_own(app, client):
    from clinic_app.web.hooks import CSP

    @app.get("/test-only/own-headers")
    def own_headers():  # type: ignore[no-untyped-def]
        return "ok", 200, {"Cache-Control": "max-age=60", "x-frame-options": "SAMEORIGIN"}

    expected = [
        ("Content-Security-Policy", CSP), ("X-Content-Type-Options", "nosniff"),
        ("X-Frame-Options", "DENY"), ("Referrer-Policy", "same-origin"),
        ("Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=()"),
        ("Cross-Origin-Opener-Policy", "same-origin"), ("Cache-Control", "no-store")]
    names = {k.lower() for k, _ in expected} | {"strict-transport-security"}
    api = client.get("/api/v1/services")
    assert [(k, v) for k, v in api.headers if k.lower() in names] == expected
    # A header the view set is kept, whatever its spelling, and not doubled.
    page = client.get("/test-only/own-headers")
    assert page.headers.getlist("Cache-Control") == ["max-age=60"]
    assert page.headers.getlist("X-Frame-Options") == ["SAMEORIGIN"]
    assert page.headers["Content-Security-Policy"] == CSP
    # Static files may be cached; plain http gets no HSTS (the test base URL is http).
    static = client.get("/static/vendor/pico.min.css")
    assert "no-store" not in static.headers.get("Cache-Control", "")
    assert "Strict-Transport-Security" not in api.headers


def test_https_deployments_get_hsts(app_config):
    from clinic_app import create_app

    secure = create_app({**app_config, "BASE_URL": "https://clinic.example"})
    response = secure.test_client().get("/api/v1/openapi.json")
    assert response.headers["Strict-Transport-Security"] == (
        "max-age=31536000; includeSubDomains")
    assert response.headers["Cache-Control"] == "no-store"
    with secure.app_context():
        _db.engine.dispose()


def test_session_signer_follows_a_key_rotation(app, client, db):
    """The session signer is built once per set of keys: a new secret key refuses the old
    cookies at once, and the old key among the fallbacks accepts them again."""
    user = make_user(app)
    login(client, user)
    assert client.get("/account/").status_code == 200
    cookie = client.get_cookie("session")
    old_key = app.secret_key
    app.secret_key = "a-brand-new-secret-key-0123456789"
    refused = client.get("/account/")
    assert refused.status_code == 302 and "/login" in refused.headers["Location"]
    app.config["SECRET_KEY_FALLBACKS"] = [old_key]
    try:
        # The refusal answered with a new session cookie: send the old one again.
        client.set_cookie("session", cookie.value, domain=cookie.domain, path=cookie.path)
        assert client.get("/account/").status_code == 200
    finally:
        app.config["SECRET_KEY_FALLBACKS"] = []
        app.secret_key = old_key
    assert client.get("/account/").status_code == 200
