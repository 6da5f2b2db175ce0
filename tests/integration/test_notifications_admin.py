"""The admin's outbox page: failed and dead messages, and a retry button (POST + CSRF)."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from clinic_app.mail.outbox import Outgoing
from clinic_app.mail.outbox import enqueue
from clinic_app.models import OutboxMessage
from tests.factories import PASSWORD
from tests.factories import make_user


@pytest.fixture
def app_config(app_config):
    app_config["WTF_CSRF_ENABLED"] = True
    return app_config


def _login(client, email):
    page = client.get("/login")
    token = re.search(rb'name="csrf_token"[^>]*value="([^"]+)"', page.data).group(1).decode()
    response = client.post("/login", data={"email": email, "password": PASSWORD,
                                           "csrf_token": token})
    assert response.status_code == 302


def _token(page) -> str:
    return re.search(rb'name="csrf_token"[^>]*value="([^"]+)"', page.data).group(1).decode()


@pytest.fixture
def broken(app, db, clock):
    rows = {}
    for key, status in (("a", "dead"), ("b", "failed"), ("c", "sent")):
        row = enqueue(db.session, key=f"test:{key}", kind="reminder", now=clock.now(),
                      message=Outgoing(to=f"{key}@example.com", subject="S", text="T"))
        row.status, row.attempts = status, 8 if status == "dead" else 2
        row.last_error = f"550 refused {key}"
        row.next_attempt_at = clock.now() + timedelta(minutes=5)
        rows[key] = row
    db.session.commit()
    return rows


def test_admin_sees_failed_and_dead_and_retries(app, client, db, clock, broken):
    make_user(app, role="admin", email="admin@example.com")
    _login(client, "admin@example.com")
    page = client.get("/admin/outbox/")
    assert page.status_code == 200
    for text in (b"a@example.com", b"550 refused a", b"b@example.com", b"550 refused b"):
        assert text in page.data
    assert b"c@example.com" not in page.data  # sent: nothing to do
    dead = broken["a"]
    clock.advance(timedelta(hours=1))
    # Without the CSRF token nothing changes.
    assert client.post(f"/admin/outbox/{dead.id}/retry").status_code in (302, 400)
    db.session.expire_all()
    assert db.session.get(OutboxMessage, dead.id).status == "dead"
    response = client.post(f"/admin/outbox/{dead.id}/retry", data={"csrf_token": _token(page)})
    assert response.status_code == 302
    db.session.expire_all()
    row = db.session.get(OutboxMessage, dead.id)
    assert (row.status, row.attempts, row.next_attempt_at) == ("pending", 0, clock.now())
    # A sent message cannot be retried; an unknown one is 404.
    response = client.post(f"/admin/outbox/{broken['c'].id}/retry",
                           data={"csrf_token": _token(page)}, follow_redirects=True)
    assert b"only failed or dead ones can be retried" in response.data
    assert db.session.get(OutboxMessage, broken["c"].id).status == "sent"
    assert client.post("/admin/outbox/99999/retry",
                       data={"csrf_token": _token(page)}).status_code == 404


def test_outbox_page_is_admin_only(app, client, db, broken):
    assert client.get("/admin/outbox/").status_code == 302  # log in first
    make_user(app, role="therapist", email="t@example.com")
    _login(client, "t@example.com")
    assert client.get("/admin/outbox/").status_code == 403
    assert client.post(f"/admin/outbox/{broken['a'].id}/retry").status_code in (400, 403)
    db.session.expire_all()
    assert db.session.get(OutboxMessage, broken["a"].id).status == "dead"
