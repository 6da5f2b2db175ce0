"""Waitlist API (issue 13 item 1): join, list, leave; who may join; expiry; staff for a client."""

from __future__ import annotations

from datetime import date
from datetime import timedelta

import pytest

from clinic_app.models import WaitlistEntry
from clinic_app.services import care
from clinic_app.services import waitlist as waitlist_service
from clinic_app.worker import expire_waitlist_job
from tests.api_contract import assert_documented
from tests.factories import make_user
from tests.factories.accounts import token_for
from tests.factories.booking import make_clinic
from tests.factories.care import recorded_session
from tests.factories.notify import run_job
from tests.factories.schedule import local

# The frozen clock starts on Monday 2026-11-23, 08:00 UTC.
TODAY = date(2026, 11, 23)


@pytest.fixture
def clinic(app):
    return make_clinic(app)


@pytest.fixture
def auth(app, clinic):
    return token_for(app, clinic.client)


def join(client, headers, clinic, **extra):
    body = {"service_id": clinic.service.id, "from": "2026-11-24", "to": "2026-11-30", **extra}
    return client.post("/api/v1/waitlist", headers=headers, json=body)


def test_join_list_leave(client, clinic, auth, db):
    response = join(client, auth, clinic, therapist_id=clinic.t1.id,
                    parts_of_day=["evening", "morning", "morning"])
    entry = assert_documented(response, "POST", "/waitlist")
    assert entry["from"] == "2026-11-24" and entry["to"] == "2026-11-30"
    assert entry["therapist_id"] == clinic.t1.id and entry["service_id"] == clinic.service.id
    # Stored in the day's order, once each.
    assert entry["parts_of_day"] == ["morning", "evening"] and entry["status"] == "waiting"
    second = join(client, auth, clinic, **{"from": "2026-11-25"}).get_json()
    assert second["therapist_id"] is None and second["parts_of_day"] == []

    listed = assert_documented(client.get("/api/v1/waitlist", headers=auth), "GET", "/waitlist")
    assert [e["id"] for e in listed["entries"]] == [entry["id"], second["id"]]

    assert client.delete(f"/api/v1/waitlist/{entry['id']}", headers=auth).status_code == 204
    listed = client.get("/api/v1/waitlist", headers=auth).get_json()
    assert [e["id"] for e in listed["entries"]] == [second["id"]]
    assert db.session.get(WaitlistEntry, entry["id"]).status == "left"
    again = client.delete(f"/api/v1/waitlist/{entry['id']}", headers=auth)
    assert again.status_code == 404 and again.get_json()["error"]["code"] == "not_found"


def test_bad_input_is_a_422_with_fields(client, clinic, auth):
    cases = [
        ({"from": "2026-11-30", "to": "2026-11-24"}, "to"),
        ({"from": "2026-11-20"}, "from"),  # in the past
        ({"to": "2027-06-01"}, "to"),  # beyond the 90-day horizon
        ({"parts_of_day": ["night"]}, "parts_of_day.0"),
        ({"from": "soon"}, "from"),
        ({"therapist_id": 2**31}, "therapist_id"),
    ]
    for extra, field in cases:
        response = join(client, auth, clinic, **extra)
        assert response.status_code == 422, extra
        assert field in response.get_json()["error"]["fields"], (extra, response.get_json())
    unknown = client.post("/api/v1/waitlist", headers=auth,
                          json={"service_id": 999, "from": "2026-11-24", "to": "2026-11-30"})
    assert unknown.status_code == 404
    assert client.post("/api/v1/waitlist", json={}).status_code == 401


def test_horizon_is_inclusive(client, clinic, auth):
    last = (TODAY + timedelta(days=90)).isoformat()
    assert join(client, auth, clinic, to=last).status_code == 201
    day_after = (TODAY + timedelta(days=91)).isoformat()
    response = join(client, auth, clinic, to=day_after)
    assert response.status_code == 422
    assert response.get_json()["error"]["code"] == "beyond_horizon"


def test_a_referred_client_cannot_join(app, client, clinic, auth):
    recorded_session(app, clinic, local(2026, 11, 16, 10), soreness=3,
                     red_flags=["fever"])
    response = join(client, auth, clinic)
    assert response.status_code == 422
    assert response.get_json()["error"]["code"] == "see_clinician_first"
    assert client.get("/api/v1/waitlist", headers=auth).get_json() == {"entries": []}


def test_a_client_awaiting_review_cannot_join(app, client, clinic, auth):
    recorded_session(app, clinic, local(2026, 11, 16, 10), soreness=9)
    response = join(client, auth, clinic)
    assert response.status_code == 422
    assert response.get_json()["error"]["code"] == "awaiting_review"


def test_a_client_with_a_normal_window_joins(app, client, clinic, auth):
    recorded_session(app, clinic, local(2026, 11, 16, 10), soreness=2)
    assert join(client, auth, clinic).status_code == 201


def test_others_cannot_see_or_leave_an_entry(app, client, clinic, auth):
    entry = join(client, auth, clinic).get_json()
    other = token_for(app, make_user(app))
    assert client.get("/api/v1/waitlist", headers=other).get_json() == {"entries": []}
    assert client.delete(f"/api/v1/waitlist/{entry['id']}", headers=other).status_code == 404
    assert client.delete("/api/v1/waitlist/99999999999", headers=other).status_code == 404


def test_staff_join_for_a_client(app, client, clinic, db):
    admin = token_for(app, clinic.admin)
    response = join(client, admin, clinic, client_id=clinic.client.id)
    assert response.status_code == 201
    entry = response.get_json()
    assert entry["client_id"] == clinic.client.id
    assert db.session.get(WaitlistEntry, entry["id"]).created_by_id == clinic.admin.id
    mine = client.get("/api/v1/waitlist", headers=token_for(app, clinic.client)).get_json()
    assert [e["id"] for e in mine["entries"]] == [entry["id"]]
    # A therapist who does not treat the client cannot; nor can a client for someone else.
    stranger = token_for(app, clinic.t2.user)
    assert join(client, stranger, clinic, client_id=clinic.client.id).status_code == 404
    other_client = token_for(app, make_user(app))
    assert join(client, other_client, clinic, client_id=clinic.client.id).status_code == 404
    # Staff leave it for the client.
    assert client.delete(f"/api/v1/waitlist/{entry['id']}", headers=admin).status_code == 204


def test_entries_expire_at_the_end_of_their_range(app, client, clinic, auth, clock, db):
    entry = join(client, auth, clinic, to="2026-11-25").get_json()
    clock.advance(timedelta(days=2, hours=15))  # Wed 25th, 23:00 UTC: still inside
    assert len(client.get("/api/v1/waitlist", headers=auth).get_json()["entries"]) == 1
    clock.advance(timedelta(hours=2))  # Thu 26th
    assert client.get("/api/v1/waitlist", headers=auth).get_json() == {"entries": []}
    assert client.delete(f"/api/v1/waitlist/{entry['id']}", headers=auth).status_code == 404
    assert waitlist_service.expire_entries(db.session, clock.now()) == 1
    db.session.commit()
    assert db.session.get(WaitlistEntry, entry["id"]).status == "expired"
    assert waitlist_service.expire_entries(db.session, clock.now()) == 0


def test_ranking_entries_carry_the_clients_window(app, client, clinic, auth, db):
    recorded_session(app, clinic, local(2026, 11, 20, 10), soreness=2)
    join(client, auth, clinic, parts_of_day=["afternoon"])
    [entry] = waitlist_service.ranking_entries(db.session, clinic.service.id,
                                               app.extensions["clock"].now())
    assert entry.client_id == clinic.client.id
    assert entry.earliest is not None and entry.latest is not None
    assert entry.earliest <= entry.latest
    assert [p.value for p in entry.parts_of_day] == ["afternoon"]


def test_the_worker_expires_ended_entries(app, client, clinic, auth, clock, db):
    entry = join(client, auth, clinic, to="2026-11-24").get_json()
    assert run_job(expire_waitlist_job, app) == 0
    clock.advance(timedelta(days=2))
    assert run_job(expire_waitlist_job, app) == 1
    db.session.rollback()
    assert db.session.get(WaitlistEntry, entry["id"]).status == "expired"


def test_candidates_for_a_freed_slot_put_the_due_client_first(app, client, clinic, db):
    # A joined first but has no window; B's window (22nd-28th) contains the slot; C's
    # earliest (27th, soreness 7) is after it, so C is never offered it (R5).
    a, b, c = clinic.client, make_user(app), make_user(app)
    recorded_session(app, clinic, local(2026, 11, 20, 10), client=b, soreness=2)
    recorded_session(app, clinic, local(2026, 11, 23, 9), client=c, soreness=7)
    for person in (a, b, c):
        assert join(client, token_for(app, person), clinic).status_code == 201
    now = app.extensions["clock"].now()
    slot = local(2026, 11, 25, 10)
    ranked = waitlist_service.candidates_for_freed_slot(
        db.session, service_id=clinic.service.id, therapist_id=clinic.t1.id, start=slot,
        now=now)
    assert [r.entry.client_id for r in ranked] == [b.id, a.id]
    excluded = waitlist_service.candidates_for_freed_slot(
        db.session, service_id=clinic.service.id, therapist_id=clinic.t1.id, start=slot,
        now=now, exclude_clients=frozenset({b.id}))
    assert [r.entry.client_id for r in excluded] == [a.id]
    evening_only = join(client, token_for(app, make_user(app)), clinic,
                        parts_of_day=["evening"]).get_json()
    ranked = waitlist_service.candidates_for_freed_slot(
        db.session, service_id=clinic.service.id, therapist_id=clinic.t1.id, start=slot,
        now=now)
    assert evening_only["client_id"] not in [r.entry.client_id for r in ranked]


def test_batched_windows_are_the_current_recommendation(app, client, clinic, db):
    # Two sessions: the newer recommendation is the current one, as care says.
    recorded_session(app, clinic, local(2026, 11, 16, 10), soreness=7)
    recorded_session(app, clinic, local(2026, 11, 23, 10), soreness=2)
    join(client, token_for(app, clinic.client), clinic)
    now = app.extensions["clock"].now()
    [entry] = waitlist_service.ranking_entries(db.session, clinic.service.id, now)
    current = care.current_recommendation(db.session, clinic.client.id)
    assert (entry.earliest, entry.latest) == (current.earliest, current.latest)
