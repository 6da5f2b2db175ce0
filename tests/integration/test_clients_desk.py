"""Clients at the desk: GET/POST /api/v1/clients and the directory pages (issue 11)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from clinic_app.models import User
from tests.factories import make_user
from tests.factories.accounts import login
from tests.factories.accounts import token_for
from tests.factories.booking import make_clinic
from tests.factories.booking import raw_booking
from tests.factories.schedule import local


@pytest.fixture
def clinic(app):
    c = make_clinic(app)
    c.known = make_user(app, name="Jane Known", email="jane@example.com", phone="07700 900123")
    c.stranger = make_user(app, name="Sam Stranger", email="sam@example.com")
    # t1 treats Jane; nobody has seen Sam.
    raw_booking(app, client=c.known, therapist=c.t1, room=c.rooms[0], service=c.service,
                start=local(2026, 11, 24, 10))
    return c


def test_admin_searches_by_name_email_and_phone(client, clinic):
    admin = token_for(client.application, clinic.admin)

    def names(q):
        response = client.get("/api/v1/clients", headers=admin, query_string={"q": q})
        assert response.status_code == 200
        return [c["name"] for c in response.get_json()["clients"]]

    assert names("jane") == ["Jane Known"]
    assert names("SAM@EXAMPLE") == ["Sam Stranger"]
    assert names("07700 900") == ["Jane Known"]
    assert names("07700900123") == ["Jane Known"]  # other spacing: digits compared
    assert names("nobody-like-this") == []
    everyone = names("")
    assert "Jane Known" in everyone and "Sam Stranger" in everyone
    shape = client.get("/api/v1/clients?q=jane", headers=admin).get_json()["clients"][0]
    assert shape == {"id": clinic.known.id, "name": "Jane Known", "email": "jane@example.com",
                     "phone": "07700 900123"}


def test_therapist_searches_only_their_own_clients(client, clinic):
    t1 = token_for(client.application, clinic.t1.user)
    t2 = token_for(client.application, clinic.t2.user)
    assert [c["name"] for c in client.get("/api/v1/clients?q=",
                                          headers=t1).get_json()["clients"]] == ["Jane Known"]
    assert client.get("/api/v1/clients?q=sam", headers=t1).get_json()["clients"] == []
    assert client.get("/api/v1/clients?q=jane", headers=t2).get_json()["clients"] == []
    assert client.get("/api/v1/clients", headers=token_for(client.application,
                                                           clinic.client)).status_code == 404
    assert client.get("/api/v1/clients").status_code == 401


def test_admin_creates_phone_only_and_email_clients(client, clinic, db, mailbox):
    admin = token_for(client.application, clinic.admin)
    phone_only = client.post("/api/v1/clients", headers=admin,
                             json={"name": " New  Caller ", "phone": "+44 7700 900999"})
    assert phone_only.status_code == 201, phone_only.get_json()
    body = phone_only.get_json()
    assert body == {"id": body["id"], "name": "New Caller", "email": None,
                    "phone": "+44 7700 900999"}
    user = db.session.get(User, body["id"])
    assert user.role == "client" and user.consent_at is not None and user.password_hash is None
    invited = client.post("/api/v1/clients", headers=admin,
                          json={"name": "Ivy Invite", "email": "Ivy@Example.com",
                                "invite": True})
    assert invited.status_code == 201 and invited.get_json()["email"] == "ivy@example.com"
    assert mailbox.last_link("ivy@example.com", "/invite/")
    quiet = client.post("/api/v1/clients", headers=admin,
                        json={"name": "Quiet Person", "email": "quiet@example.com"})
    assert quiet.status_code == 201
    assert mailbox.deliver() and not mailbox.messages("quiet@example.com")


def test_create_client_unhappy_paths(client, clinic):
    app = client.application
    admin = token_for(app, clinic.admin)
    taken = client.post("/api/v1/clients", headers=admin,
                        json={"name": "Again", "email": "JANE@example.com"})
    assert taken.status_code == 409 and taken.get_json()["error"]["code"] == "email_taken"
    neither = client.post("/api/v1/clients", headers=admin, json={"name": "Nobody"})
    assert neither.status_code == 422 and "email" in neither.get_json()["error"]["fields"]
    bad = client.post("/api/v1/clients", headers=admin,
                      json={"name": "Bad", "email": "not-an-email", "phone": "abc"})
    assert set(bad.get_json()["error"]["fields"]) == {"email", "phone"}
    no_name = client.post("/api/v1/clients", headers=admin, json={"name": " ", "phone": "0123456"})
    assert no_name.status_code == 422 and "name" in no_name.get_json()["error"]["fields"]
    invite_no_email = client.post("/api/v1/clients", headers=admin,
                                  json={"name": "P", "phone": "0123456789", "invite": True})
    assert invite_no_email.status_code == 422
    assert "invite" in invite_no_email.get_json()["error"]["fields"]
    assert client.post("/api/v1/clients", headers=admin, json=[]).status_code == 400
    therapist = client.post("/api/v1/clients", headers=token_for(app, clinic.t1.user),
                            json={"name": "X", "phone": "0123456789"})
    assert therapist.status_code == 404
    as_client = client.post("/api/v1/clients", headers=token_for(app, clinic.client),
                            json={"name": "X", "phone": "0123456789"})
    assert as_client.status_code == 404


def test_phone_only_client_is_booked_at_once_without_email(client, clinic, db, mailbox):
    admin = token_for(client.application, clinic.admin)
    made = client.post("/api/v1/clients", headers=admin,
                       json={"name": "Phone Only", "phone": "07700 900555"}).get_json()
    booked = client.post("/api/v1/bookings", headers=admin,
                         json={"service_id": clinic.service.id, "client_id": made["id"],
                               "start": "2026-11-24T14:00:00+00:00"})
    assert booked.status_code == 201, booked.get_json()
    delivered = mailbox.deliver()
    # The therapist still gets their copy; nothing is addressed to the client (no address).
    assert all("None" not in str(m["To"]) for m in delivered)
    assert any(clinic.t1.user.email in str(m["To"]) for m in delivered)


def test_directory_pages(client, clinic, db):
    login(client, clinic.admin)
    page = client.get("/staff/clients?q=jane").get_data(as_text=True)
    assert "Jane Known" in page and "Sam Stranger" not in page and "New client" in page
    created = client.post("/staff/clients", data={"name": "Desk Person", "phone": "0207 946 0000"})
    assert created.status_code == 302
    person = db.session.scalar(select(User).where(User.name == "Desk Person"))
    shown = client.get(created.headers["Location"]).get_data(as_text=True)
    assert "0207 946 0000" in shown and "Created at the desk" in shown
    refused = client.post("/staff/clients", data={"name": "No Contact"})
    assert refused.status_code == 422 and "email address or a phone number" in \
        refused.get_data(as_text=True)
    taken = client.post("/staff/clients", data={"name": "J", "email": "jane@example.com"})
    assert taken.status_code == 422 and "already exists" in taken.get_data(as_text=True)
    assert person is not None
    page_of_known = client.get(f"/staff/clients/{clinic.known.id}").get_data(as_text=True)
    assert "Upcoming" in page_of_known and clinic.service.name in page_of_known
    # The admin reaches the client's audit log from the client page (issue 11 item 3).
    audit_link = f"/admin/clients/{clinic.known.id}/access-log"
    assert audit_link in page_of_known
    assert client.get(audit_link).status_code == 200
    assert client.get("/staff/clients/999999").status_code == 404


def test_therapist_directory_is_their_own(client, clinic):
    login(client, clinic.t1.user)
    page = client.get("/staff/clients").get_data(as_text=True)
    assert "Jane Known" in page and "Sam Stranger" not in page and "New client" not in page
    own = client.get(f"/staff/clients/{clinic.known.id}")
    assert own.status_code == 200 and "/access-log" not in own.get_data(as_text=True)
    assert client.get(f"/staff/clients/{clinic.stranger.id}").status_code == 404
    assert client.post("/staff/clients", data={"name": "X", "phone": "0123456789"}
                       ).status_code == 403
    login(client, clinic.client)
    assert client.get("/staff/clients").status_code == 403
