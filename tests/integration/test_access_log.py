"""Issue 9 item 2: the audit log is readable: an admin page per client and the same list in
the client's own data export (page and API)."""

from __future__ import annotations

import json
from datetime import UTC
from datetime import datetime

import pytest

from clinic_app.services import care
from tests.api_contract import assert_documented
from tests.factories.accounts import login
from tests.factories.accounts import token_for
from tests.factories.booking import make_clinic
from tests.factories.care import recorded_session

MON = datetime(2026, 11, 23, 13, 0, tzinfo=UTC)


@pytest.fixture
def read_by_staff(app, db, client, clock):
    """A client whose session record the therapist and whose intake the admin read."""
    clinic = make_clinic(app)
    booking, _ = recorded_session(app, clinic, MON)
    care.save_intake(db.session, clinic.client, {"fever": True}, clock.now())
    db.session.commit()
    client.get(f"/api/v1/bookings/{booking.id}/session-record",
               headers=token_for(app, clinic.t1.user))
    client.get("/api/v1/clients/me/intake", headers=token_for(app, clinic.client))  # own: no
    care.get_intake(db.session, clinic.client, clinic.admin, clock.now())
    db.session.commit()
    return clinic, booking


def test_admin_sees_who_read_what_and_when(app, db, client, read_by_staff):
    clinic, booking = read_by_staff
    login(client, clinic.admin)
    page = client.get(f"/admin/clients/{clinic.client.id}/access-log")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert f"Who read {clinic.client.name}" in text
    assert clinic.t1.user.name in text and "session record" in text
    assert clinic.admin.name in text and "health questionnaire" in text
    assert "2 reads, newest first" in text
    # Newest first: the admin's read comes before the therapist's.
    assert text.index("health questionnaire") < text.index("session record")
    # Linked from the booking page and the bookings list.
    url = f"/admin/clients/{clinic.client.id}/access-log"
    assert url in client.get(f"/admin/bookings/{booking.id}").get_data(as_text=True)
    listing = client.get("/admin/bookings?date_from=2026-11-01").get_data(as_text=True)
    assert url in listing


def test_the_access_log_page_is_for_admins_and_clients_only(app, db, client, read_by_staff):
    clinic, _ = read_by_staff
    url = f"/admin/clients/{clinic.client.id}/access-log"
    login(client, clinic.t1.user)
    assert client.get(url).status_code == 403
    login(client, clinic.client)
    assert client.get(url).status_code == 403
    login(client, clinic.admin)
    assert client.get(f"/admin/clients/{clinic.t1.user.id}/access-log").status_code == 404
    assert client.get(f"/admin/clients/{2**70}/access-log").status_code == 404
    assert client.get("/admin/clients/999999/access-log").status_code == 404


def test_an_unread_client_has_an_empty_log(app, db, client):
    clinic = make_clinic(app)
    login(client, clinic.admin)
    text = client.get(f"/admin/clients/{clinic.client.id}/access-log").get_data(as_text=True)
    assert "Nobody at the clinic has read this client's health data yet." in text


def test_the_export_lists_the_reads_in_the_api_and_the_download(app, db, client, clock,
                                                               read_by_staff):
    clinic, booking = read_by_staff
    me = token_for(app, clinic.client)
    body = assert_documented(client.get("/api/v1/clients/me/export", headers=me), "GET",
                             "/clients/me/export")
    log = body["access_log"]
    assert [(e["who"], e["role"], e["what"]) for e in log] == [
        (clinic.t1.user.name, "therapist", "session record"),
        (clinic.admin.name, "admin", "health questionnaire"),
    ]
    assert all(e["at"] == clock.now().isoformat() for e in log)
    assert log[0]["record_type"] == "session_record" and log[0]["action"].startswith("read:")
    login(client, clinic.client)
    download = json.loads(client.get("/account/export").get_data(as_text=True))
    assert download["access_log"] == log
    # Another client's export holds none of these reads.
    other = make_clinic(app, therapists=1, rooms=1).client
    theirs = client.get("/api/v1/clients/me/export", headers=token_for(app, other)).json
    assert theirs["access_log"] == []
