"""A whole course of treatment through the API: book, complete, check in, get the note's
window each time, book inside it; red flag -> refer + alert; therapist override."""

from __future__ import annotations

from datetime import UTC
from datetime import date
from datetime import datetime

import pytest
from sqlalchemy import select

from clinic_app.errors import ValidationFailed
from clinic_app.models import Booking
from clinic_app.models import OutboxMessage
from clinic_app.models import Recommendation
from clinic_app.services import care
from tests.factories.accounts import token_for
from tests.factories.booking import make_clinic
from tests.factories.care import recorded_session


@pytest.fixture
def clinic(app):
    return make_clinic(app)


def at(month: int, day: int, hour: int, minute: int = 0) -> datetime:
    # November and December: London is on GMT, so local = UTC.
    year = 2026 if month >= 11 else 2027
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def window(body: dict) -> tuple:
    return body["earliest"], body["ideal"], body["latest"], body["action"], \
        body["intensity_advice"]


def book(client, clinic, headers, start: datetime, **extra):
    return client.post("/api/v1/bookings", headers=headers, json={
        "service_id": clinic.service.id, "therapist_id": clinic.t1.id,
        "start": start.isoformat(), **extra})


def complete(client, booking_id, headers, **record):
    body = {"intensity": 5, "goal": "chronic", "regions": ["upper back"],
            "muscles": ["upper trapezius"], "techniques": ["ischaemic compression"], **record}
    return client.post(f"/api/v1/bookings/{booking_id}/complete", headers=headers, json=body)


def check_in(client, booking_id, headers, **answers):
    return client.post(f"/api/v1/bookings/{booking_id}/check-in", headers=headers, json=answers)


def follow_up(client, booking_id, headers):
    response = client.get(f"/api/v1/bookings/{booking_id}/follow-up", headers=headers)
    assert response.status_code == 200, response.json
    return response.json


def test_whole_course(app, db, client, clock, clinic, mailbox):
    me = token_for(app, clinic.client)
    t1 = token_for(app, clinic.t1.user)

    # Session 1, Monday 23 November 13:00 (moderate work, no soreness reported yet).
    response = book(client, clinic, me, at(11, 23, 13))
    assert response.status_code == 201, response.json
    s1 = response.json["id"]
    early = complete(client, s1, t1)
    assert early.status_code == 409 and early.json["error"]["code"] == "not_started"
    clock.set(at(11, 23, 14, 5))
    done = complete(client, s1, t1)
    assert done.status_code == 201, done.json
    assert done.json["status"] == "completed"
    assert done.json["session_record"]["session_number"] == 1
    # R1 missing soreness, moderate: +2 days; R2 initial +4; R3 +4.
    assert window(follow_up(client, s1, me)) == (
        "2026-11-25", "2026-11-27", "2026-12-01", "book", None)

    # +24 h: soreness 2 -> keep or progress, same dates.
    clock.set(at(11, 24, 14, 5))
    answered = check_in(client, s1, me, soreness=2, red_flags=[], progress="same")
    assert answered.status_code == 201, answered.json
    assert answered.json["seek_care"] is None
    assert window(answered.json["follow_up"]) == (
        "2026-11-25", "2026-11-27", "2026-12-01", "book", "keep_or_progress")
    again = check_in(client, s1, me, soreness=3)
    assert again.status_code == 409 and again.json["error"]["code"] == "already_submitted"

    # Booking before the earliest date needs an explicit confirmation (R5), recorded.
    too_early = book(client, clinic, me, at(11, 24, 15))
    assert too_early.status_code == 422
    assert too_early.json["error"]["code"] == "before_earliest"
    # The offered slots: the same therapist inside the window first, then the others.
    options = care.next_session_options(db.session, clinic.client, clock.now())
    assert options.therapist_id == clinic.t1.id and options.same_therapist
    assert all(s.therapist_id == clinic.t1.id for s in options.same_therapist)
    assert all(s.therapist_id != clinic.t1.id for s in options.other_therapists)
    days = {s.start.date() for s in options.same_therapist + options.other_therapists}
    assert min(days) >= date(2026, 11, 25) and max(days) <= date(2026, 12, 1)

    # Session 2 on the ideal day, Friday 27th: deep work, soreness 4 -> the note's
    # first worked example (Mon 1st -> Thu 4 / Fri 5 / Tue 9, keep).
    response = book(client, clinic, me, at(11, 27, 10))
    assert response.status_code == 201, response.json
    s2 = response.json["id"]
    assert response.json["early_confirmed"] is False
    clock.set(at(11, 27, 11, 5))
    assert complete(client, s2, t1, intensity=7).json["session_record"]["session_number"] == 2
    clock.set(at(11, 28, 11, 5))
    answered = check_in(client, s2, me, soreness=4, progress="same")
    assert window(answered.json["follow_up"]) == (
        "2026-11-30", "2026-12-01", "2026-12-05", "book", "keep")
    # +72 h "still sore?": no -> nothing changes.
    clock.set(at(11, 30, 11, 5))
    answered = check_in(client, s2, me, kind="72h", still_sore=False)
    assert answered.status_code == 201, answered.json
    assert window(follow_up(client, s2, me))[:3] == ("2026-11-30", "2026-12-01", "2026-12-05")

    # Session 3 on Tuesday 1 December: soreness 7 -> the third worked example
    # (Mon 1st -> Fri 5 / Fri 5 / Tue 9, reduce).
    response = book(client, clinic, me, at(12, 1, 10))
    assert response.status_code == 201, response.json
    s3 = response.json["id"]
    clock.set(at(12, 1, 11, 5))
    assert complete(client, s3, t1).status_code == 201
    clock.set(at(12, 2, 11, 5))
    answered = check_in(client, s3, me, soreness=7)
    assert window(answered.json["follow_up"]) == (
        "2026-12-05", "2026-12-05", "2026-12-09", "book", "reduce")
    # Still sore at 72 h -> R0 therapist review, earliest a week after the session.
    clock.set(at(12, 4, 11, 5))
    answered = check_in(client, s3, me, kind="72h", still_sore=True, soreness=5)
    assert window(answered.json["follow_up"]) == (
        "2026-12-08", "2026-12-08", "2026-12-12", "therapist_review", "reduce")
    assert {r["rule"] for r in answered.json["follow_up"]["reasons"]} >= {"R0", "R2", "R3"}

    # Sessions 4-7 (recorded directly), then session 8 on Monday 21 December, better,
    # soreness 2 -> the second worked example (Mon 1st -> Wed 3 / Mon 8 / Mon 15, progress).
    for day in (8, 12, 15, 19):
        recorded_session(app, clinic, at(12, day, 10), soreness=3, progress="same")
    clock.set(at(12, 20, 9))
    response = book(client, clinic, me, at(12, 21, 10))
    assert response.status_code == 201, response.json
    s8 = response.json["id"]
    clock.set(at(12, 21, 11, 5))
    done = complete(client, s8, t1, progress="better")
    assert done.json["session_record"]["session_number"] == 8
    clock.set(at(12, 22, 11, 5))
    answered = check_in(client, s8, me, soreness=2, progress="better")
    assert window(answered.json["follow_up"]) == (
        "2026-12-23", "2026-12-28", "2027-01-04", "book", "keep_or_progress")
    mine = client.get("/api/v1/clients/me/recommendation", headers=me)
    assert mine.status_code == 200 and mine.json["booking_id"] == s8
    assert mine.json["ideal"] == "2026-12-28"

    # A red flag at the 72 h check-in: no dates, refer, the client sees the seek-care text
    # and the therapist gets an alert at once (through the outbox).
    clock.set(at(12, 24, 11, 5))
    me, t1 = token_for(app, clinic.client), token_for(app, clinic.t1.user)  # 30-day tokens
    answered = check_in(client, s8, me, kind="72h", still_sore=False,
                        red_flags=["calf_pain_swelling"])
    assert answered.status_code == 201, answered.json
    assert "doctor" in answered.json["seek_care"]
    assert window(answered.json["follow_up"]) == (None, None, None, "refer", None)
    assert answered.json["follow_up"]["reasons"][0]["code"] == "red_flag:calf_pain_swelling"
    alert = db.session.scalar(select(OutboxMessage).where(
        OutboxMessage.key == f"booking:{s8}:red-flag:72h"))
    assert alert is not None and alert.kind == "red_flag_alert"
    assert alert.to_addr == clinic.t1.user.email and alert.due_at == clock.now()
    sent = mailbox.deliver()  # rendered when it goes
    [mail] = [m for m in sent if m["Subject"] == "A client needs your attention"]
    assert "Calf" not in mailbox.text(mail)  # no symptoms in email
    blocked = book(client, clinic, me, at(12, 30, 10), early_confirmed=True)
    assert blocked.status_code == 422
    assert blocked.json["error"]["code"] == "see_clinician_first"

    # The therapist talks to the client and sets their own window, with a reason.
    override = client.post(f"/api/v1/bookings/{s8}/follow-up/override", headers=t1, json={
        "earliest": "2026-12-30", "ideal": "2027-01-02", "latest": "2027-01-09",
        "reason": "GP saw the calf: no clot. Resume weekly sessions."})
    assert override.status_code == 201, override.json
    assert override.json["source"] == "override"
    mine = client.get("/api/v1/clients/me/recommendation", headers=me).json
    assert mine["earliest"] == "2026-12-30" and mine["action"] == "book"
    history = db.session.scalars(select(Recommendation).where(
        Recommendation.booking_id == s8).order_by(Recommendation.id)).all()
    assert [r.source for r in history][-1] == "override"
    assert [r.action for r in history][-2] == "refer"
    assert history[-1].author_id == clinic.t1.user.id
    # Booking inside the therapist's window works again.
    inside = book(client, clinic, me, at(12, 31, 10))
    assert inside.status_code == 201, inside.json


def test_early_booking_needs_confirmation_and_is_recorded(app, db, client, clock, clinic):
    booking, _ = recorded_session(app, clinic, at(11, 23, 13), soreness=5)
    # Soreness 5: earliest Thursday 26th.
    start = at(11, 25, 10)
    with pytest.raises(ValidationFailed) as caught:
        care.check_early_booking(db.session, clinic.client, start, False, clock.now())
    assert caught.value.code == "before_earliest" and "start" in caught.value.fields
    assert care.check_early_booking(db.session, clinic.client, start, True, clock.now())
    assert not care.check_early_booking(db.session, clinic.client, at(11, 26, 10), False,
                                        clock.now())
    me = token_for(app, clinic.client)
    response = book(client, clinic, me, start, early_confirmed=True)
    assert response.status_code == 201 and response.json["early_confirmed"] is True
    assert db.session.get(Booking, response.json["id"]).early_confirmed is True
    # A therapist booking for the client decides for themselves (an override by a clinician).
    staff = book(client, clinic, token_for(app, clinic.t1.user), at(11, 25, 14),
                 client_id=clinic.client.id)
    assert staff.status_code == 201, staff.json


def test_acute_recent_injury_is_protected(app, db, client, clock, clinic):
    t1 = token_for(app, clinic.t1.user)
    booking, _ = recorded_session(app, clinic, at(11, 23, 13))
    # A new course: acute, injured the day before this session.
    care.start_new_course(db.session, clinic.client, clinic.t1.user, clock.now(), "acute",
                          "2026-11-22")
    db.session.commit()
    clock.set(at(11, 24, 9))
    s2 = book(client, clinic, token_for(app, clinic.client), at(11, 24, 13),
              early_confirmed=True).json["id"]
    clock.set(at(11, 24, 14, 5))
    done = complete(client, s2, t1, goal="acute", injury_date="2026-11-22", intensity=2)
    assert done.status_code == 201, done.json
    assert done.json["session_record"]["session_number"] == 1  # the new course
    body = follow_up(client, s2, t1)
    # Light, no soreness: +2 = 26th; the injury protection (22nd + 3 = 25th) is earlier.
    assert body["earliest"] == "2026-11-26"
    bad = complete(client, s2, t1)
    assert bad.status_code == 409 and bad.json["error"]["code"] == "not_completable"


def test_override_validation(app, db, client, clock, clinic):
    booking, _ = recorded_session(app, clinic, at(11, 23, 13), soreness=2)
    t1 = token_for(app, clinic.t1.user)
    url = f"/api/v1/bookings/{booking.id}/follow-up/override"
    out_of_order = client.post(url, headers=t1, json={
        "earliest": "2026-11-30", "ideal": "2026-11-27", "latest": "2026-12-01",
        "reason": "x"})
    assert out_of_order.status_code == 422 and "ideal" in out_of_order.json["error"]["fields"]
    no_reason = client.post(url, headers=t1, json={
        "earliest": "2026-11-24", "ideal": "2026-11-25", "latest": "2026-12-01",
        "reason": "   "})
    assert no_reason.status_code == 422 and "reason" in no_reason.json["error"]["fields"]
    before = client.post(url, headers=t1, json={
        "earliest": "2026-11-20", "ideal": "2026-11-25", "latest": "2026-12-01",
        "reason": "x"})
    assert before.status_code == 422 and "earliest" in before.json["error"]["fields"]
    junk = client.post(url, headers=t1, json={"earliest": "soon"})
    assert junk.status_code == 422
    # Inside 48 h is allowed for a therapist with a reason (an explicit override).
    fine = client.post(url, headers=t1, json={
        "earliest": "2026-11-24", "ideal": "2026-11-24", "latest": "2026-11-28",
        "reason": "Pre-competition session agreed with the client."})
    assert fine.status_code == 201 and fine.json["earliest"] == "2026-11-24"
    # A later benign check-in does not silently replace the therapist's window...
    clock.set(at(11, 26, 13))
    care.submit_checkin(db.session, booking, kind="72h", still_sore=False, now=clock.now())
    db.session.commit()
    assert care.current_recommendation(db.session, clinic.client).source == "override"
    # ...but the next session's window does.
    other, _ = recorded_session(app, clinic, at(11, 27, 13))
    assert care.current_recommendation(db.session, clinic.client).booking_id == other.id
    # No record yet: nothing to override.
    clock.set(at(11, 28, 9))
    me = token_for(app, clinic.client)
    fresh = book(client, clinic, me, at(12, 1, 10)).json["id"]
    response = client.post(f"/api/v1/bookings/{fresh}/follow-up/override", headers=t1, json={
        "earliest": "2026-12-03", "ideal": "2026-12-04", "latest": "2026-12-05",
        "reason": "x"})
    assert response.status_code == 409 and response.json["error"]["code"] == "not_completed"
