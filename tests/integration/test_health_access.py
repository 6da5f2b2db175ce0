"""Health data: only the client, their therapists and admins; everyone else 404. Every
staff read is audited (no health data in the log); the client's own reads are not."""

from __future__ import annotations

from datetime import UTC
from datetime import datetime

import pytest
from sqlalchemy import func
from sqlalchemy import select

from clinic_app.errors import NotFound
from clinic_app.models import AuditEntry
from clinic_app.services import care
from tests.factories import make_user
from tests.factories.accounts import token_for
from tests.factories.booking import make_clinic
from tests.factories.booking import raw_booking
from tests.factories.care import recorded_session
from tests.factories.pages import login

MON = datetime(2026, 11, 23, 13, 0, tzinfo=UTC)


@pytest.fixture
def clinic_pair(app, db):
    clinic = make_clinic(app)
    booking, _ = recorded_session(app, clinic, MON, soreness=3)
    care.save_intake(db.session, clinic.client, {"anticoagulants": True}, MON)
    db.session.commit()
    return clinic, booking


def audit_count(db) -> int:
    return db.session.scalar(select(func.count(AuditEntry.id)))


def test_outsiders_get_404_in_the_api(app, db, client, clinic_pair):
    clinic, booking = clinic_pair
    stranger = make_user(app)
    outsiders = {"other client": token_for(app, stranger),
                 "other therapist": token_for(app, clinic.t2.user)}
    for who, headers in outsiders.items():
        for url in (f"/api/v1/bookings/{booking.id}/follow-up",
                    f"/api/v1/bookings/{booking.id}/session-record"):
            response = client.get(url, headers=headers)
            assert response.status_code == 404, (who, url, response.json)
        for url, body in [
            (f"/api/v1/bookings/{booking.id}/check-in", {"soreness": 2}),
            (f"/api/v1/bookings/{booking.id}/complete", {"intensity": 2, "goal": "chronic"}),
            (f"/api/v1/bookings/{booking.id}/follow-up/override",
             {"earliest": "2026-11-26", "ideal": "2026-11-27", "latest": "2026-11-30",
              "reason": "x"}),
            (f"/api/v1/bookings/{booking.id}/session-record/amendments", {"text": "x"}),
        ]:
            response = client.post(url, headers=headers, json=body)
            assert response.status_code == 404, (who, url, response.json)
        assert client.get("/api/v1/bookings/999999/follow-up", headers=headers).status_code == 404
    # The other client's own recommendation and intake are theirs only (empty here).
    theirs = client.get("/api/v1/clients/me/intake", headers=outsiders["other client"])
    assert theirs.json["answers"] == {}
    # Staff do not have a "me" recommendation or intake.
    t1 = token_for(app, clinic.t1.user)
    assert client.get("/api/v1/clients/me/recommendation", headers=t1).status_code == 404
    # The therapist cannot check in for the client.
    assert client.post(f"/api/v1/bookings/{booking.id}/check-in", headers=t1,
                       json={"soreness": 1}).status_code == 404
    assert client.get(f"/api/v1/bookings/{booking.id}/follow-up").status_code == 401


def test_outsiders_get_404_in_the_services(app, db, clock, clinic_pair):
    clinic, booking = clinic_pair
    stranger = make_user(app)
    for viewer in (stranger, clinic.t2.user):
        with pytest.raises(NotFound):
            care.client_timeline(db.session, clinic.client, viewer, clock.now())
        with pytest.raises(NotFound):
            care.checkins_for_booking(db.session, booking, viewer, clock.now())
        with pytest.raises(NotFound):
            care.get_intake(db.session, clinic.client, viewer, clock.now())
        with pytest.raises(NotFound):
            care.get_session_record(db.session, booking, viewer, clock.now())
        with pytest.raises(NotFound):
            care.get_client(db.session, clinic.client.id, viewer)
    assert audit_count(db) == 0


def test_staff_reads_are_audited_client_reads_are_not(app, db, client, clock, clinic_pair):
    clinic, booking = clinic_pair
    me = token_for(app, clinic.client)
    assert client.get(f"/api/v1/bookings/{booking.id}/session-record",
                      headers=me).status_code == 200
    assert client.get(f"/api/v1/bookings/{booking.id}/follow-up", headers=me).status_code == 200
    assert client.get("/api/v1/clients/me/intake", headers=me).status_code == 200
    care.client_timeline(db.session, clinic.client, clinic.client, clock.now())
    db.session.commit()
    assert audit_count(db) == 0

    t1 = token_for(app, clinic.t1.user)
    record = client.get(f"/api/v1/bookings/{booking.id}/session-record", headers=t1)
    assert record.status_code == 200 and record.json["regions"] == ["upper back"]
    admin = token_for(app, clinic.admin)
    assert client.get(f"/api/v1/bookings/{booking.id}/follow-up", headers=admin
                      ).status_code == 200
    timeline = care.client_timeline(db.session, clinic.client, clinic.t1.user, clock.now())
    assert [s["session_number"] for s in timeline.sessions] == [1]
    assert timeline.soreness[0]["soreness"] == 3 and timeline.intake_flags == ["light_pressure"]
    assert timeline.current["action"] == "book"
    intake = care.get_intake(db.session, clinic.client, clinic.t1.user, clock.now())
    assert intake.answers["anticoagulants"] is True
    care.checkins_for_booking(db.session, booking, clinic.admin, clock.now())
    db.session.commit()
    entries = db.session.scalars(select(AuditEntry).order_by(AuditEntry.id)).all()
    assert [(e.actor_id, e.action) for e in entries] == [
        (clinic.t1.user.id, "read:session_record"),
        (clinic.admin.id, "read:recommendation"),
        (clinic.t1.user.id, "read:timeline"),
        (clinic.t1.user.id, "read:intake"),
        (clinic.admin.id, "read:check_ins"),
    ]
    assert all(e.client_id == clinic.client.id and e.at == clock.now() for e in entries)
    # Who, what, when: nothing of the health data itself.
    columns = set(AuditEntry.__table__.columns.keys())
    assert columns == {"id", "at", "actor_id", "action", "client_id", "subject_type",
                       "subject_id"}


def test_former_therapist_keeps_access_a_cancelled_booking_gives_none(app, db, clock,
                                                                      clinic_pair):
    clinic, booking = clinic_pair
    # t2 gets a (later cancelled) booking with the client: that makes no treating therapist.
    raw_booking(app, client=clinic.client, therapist=clinic.t2, room=clinic.rooms[1],
                service=clinic.service, start=datetime(2026, 12, 1, 10, tzinfo=UTC),
                status="cancelled")
    assert not care.can_see_health(db.session, clinic.t2.user, clinic.client.id)
    with pytest.raises(NotFound):
        care.client_timeline(db.session, clinic.client, clinic.t2.user, clock.now())
    # t2 gives the client a session later: from then on a former therapist keeps access,
    # also once the client's next booking is with someone else.
    recorded_session(app, clinic, datetime(2026, 11, 25, 10, tzinfo=UTC), therapist=clinic.t2)
    assert care.can_see_health(db.session, clinic.t2.user, clinic.client.id)
    timeline = care.client_timeline(db.session, clinic.client, clinic.t2.user, clock.now())
    assert len(timeline.sessions) == 2
    # ...but a booking-level write stays with the booking's own therapist.
    with pytest.raises(NotFound):
        care.override_recommendation(db.session, booking, actor=clinic.t2.user,
                                     earliest="2026-11-26", ideal="2026-11-27",
                                     latest="2026-11-30", reason="x", now=clock.now())


# --- issue 9 item 1: the treating therapist only -----------------------------------------------


def _book_via_api(client, headers, clinic, client_id, start):
    return client.post("/api/v1/bookings", headers=headers, json={
        "service_id": clinic.service.id, "start": start.isoformat(),
        "therapist_id": clinic.t2.id, "client_id": client_id})


def test_a_therapist_cannot_book_a_stranger_to_read_their_records(app, db, client, clock,
                                                                  clinic_pair):
    clinic, booking = clinic_pair
    t2 = token_for(app, clinic.t2.user)
    response = _book_via_api(client, t2, clinic, clinic.client.id,
                             datetime(2026, 12, 2, 10, tzinfo=UTC))
    # The same answer as for an unknown client: nobody learns that the client exists.
    assert response.status_code == 404, response.json
    assert response.json["error"]["code"] == "client_not_found"
    unknown = _book_via_api(client, t2, clinic, 999999, datetime(2026, 12, 2, 10, tzinfo=UTC))
    assert unknown.status_code == 404 and unknown.json["error"]["code"] == "client_not_found"
    huge = _book_via_api(client, t2, clinic, 2**31 - 1, datetime(2026, 12, 2, 10, tzinfo=UTC))
    assert huge.status_code == 404 and huge.json["error"]["code"] == "client_not_found"
    assert not care.can_see_health(db.session, clinic.t2.user, clinic.client.id)
    for url in (f"/api/v1/bookings/{booking.id}/follow-up",
                f"/api/v1/bookings/{booking.id}/session-record"):
        assert client.get(url, headers=t2).status_code == 404


def test_a_therapist_may_book_their_own_existing_client(app, db, client, clock, clinic_pair):
    clinic, booking = clinic_pair
    t1 = token_for(app, clinic.t1.user)
    response = client.post("/api/v1/bookings", headers=t1, json={
        "service_id": clinic.service.id, "start": "2026-12-02T10:00:00+00:00",
        "therapist_id": clinic.t1.id, "client_id": clinic.client.id})
    assert response.status_code == 201, response.json
    assert response.json["client_id"] == clinic.client.id


def test_a_therapist_booked_by_a_colleague_is_not_treating(app, db, clock, clinic_pair):
    """t1 (treating) books the client with t2: t2 gets no health access from that."""
    from clinic_app.services import booking as booking_service

    clinic, _ = clinic_pair
    booking_service.book(db.session, client=clinic.client, service_id=clinic.service.id,
                         start=datetime(2026, 12, 2, 10, tzinfo=UTC), now=clock.now(),
                         therapist_id=clinic.t2.id, actor=clinic.t1.user)
    db.session.commit()
    assert not care.can_see_health(db.session, clinic.t2.user, clinic.client.id)


def test_a_booking_by_the_client_or_an_admin_makes_a_treating_therapist(app, db, clock,
                                                                        clinic_pair):
    from clinic_app.services import booking as booking_service

    clinic, _ = clinic_pair
    assert not care.can_see_health(db.session, clinic.t2.user, clinic.client.id)
    made = booking_service.book(db.session, client=clinic.client, service_id=clinic.service.id,
                                start=datetime(2026, 12, 2, 10, tzinfo=UTC), now=clock.now(),
                                therapist_id=clinic.t2.id, actor=clinic.admin)
    db.session.commit()
    assert care.can_see_health(db.session, clinic.t2.user, clinic.client.id)
    # Cancelled: the relationship (never a completed session) ends with it.
    booking_service.cancel(db.session, made, actor=clinic.admin, now=clock.now())
    db.session.commit()
    assert not care.can_see_health(db.session, clinic.t2.user, clinic.client.id)
    with pytest.raises(NotFound):
        care.client_timeline(db.session, clinic.client, clinic.t2.user, clock.now())


def test_week_view_shows_no_intake_flags_for_a_cancelled_only_relationship(app, db, client,
                                                                          clock, clinic_pair):
    clinic, _ = clinic_pair
    raw_booking(app, client=clinic.client, therapist=clinic.t2, room=clinic.rooms[1],
                service=clinic.service, start=datetime(2026, 11, 24, 10, tzinfo=UTC),
                status="cancelled")
    login(client, clinic.t2.user)
    page = client.get("/therapist/week?date=2026-11-24")
    assert page.status_code == 200
    assert "Light pressure only" not in page.get_data(as_text=True)
    assert audit_count(db) == 0
    # The treating therapist's week shows them (and the read is audited).
    client.post("/logout")
    login(client, clinic.t1.user)
    mine = client.get("/therapist/week?date=2026-11-23")
    assert "Light pressure only" in mine.get_data(as_text=True)
    assert audit_count(db) == 1


def test_ids_beyond_32_bits_are_404_on_every_booking_route(app, db, client, clinic_pair):
    clinic, _ = clinic_pair
    huge = 2**70
    for user in (clinic.client, clinic.t1.user, clinic.admin):
        headers = token_for(app, user)
        for url in (f"/api/v1/bookings/{huge}/follow-up",
                    f"/api/v1/bookings/{huge}/session-record", f"/api/v1/bookings/{huge}"):
            response = client.get(url, headers=headers)
            assert response.status_code == 404, (url, response.status_code)
            assert response.json["error"]["code"] == "not_found"
        for url, body in ((f"/api/v1/bookings/{huge}/check-in", {"soreness": 1}),
                          (f"/api/v1/bookings/{huge}/cancel", {}),
                          (f"/api/v1/bookings/{huge}/complete", {"intensity": 1})):
            response = client.post(url, headers=headers, json=body)
            # 403 where the role may not use the endpoint at all, else 404.
            assert response.status_code in (403, 404), (url, response.status_code)
    login(client, clinic.admin)
    assert client.get(f"/admin/bookings/{huge}").status_code == 404
    login(client, clinic.t1.user)
    assert client.get(f"/therapist/bookings/{huge}").status_code == 404
    assert client.get(f"/therapist/clients/{huge}").status_code == 404
