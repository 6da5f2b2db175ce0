"""The demo seed shows the product: a course in progress for the demo client (records,
check-ins, a soreness trend, the next-session window, a check-in email waiting) and a coming
week with bookings for every therapist, relative to the clock's today, made by the services."""

from __future__ import annotations

from datetime import UTC
from datetime import datetime
from datetime import timedelta

import pytest
from sqlalchemy import func
from sqlalchemy import select

from clinic_app.models import Booking
from clinic_app.models import CheckIn
from clinic_app.models import OutboxMessage
from clinic_app.models import SessionRecord
from clinic_app.models import Therapist
from clinic_app.models import User
from clinic_app.services import care
from clinic_app.services import demo
from clinic_app.services.settings import clinic_zone


def _demo_client(db):
    return db.session.scalar(select(User).where(User.email == demo.DEMO_CLIENT))


# Monday (the tests' usual clock) and a Sunday: the history skips days Maya does not work.
@pytest.mark.parametrize("moment", [None, datetime(2027, 2, 7, 15, 0, tzinfo=UTC)],
                         ids=["monday", "sunday"])
def test_seed_gives_the_demo_client_a_course_in_progress(app, db, clock, moment):
    if moment is not None:
        clock.set(moment)
    now = clock.now()
    assert demo.seed(db.session, now) is True
    db.session.commit()
    client = _demo_client(db)
    today = now.astimezone(clinic_zone(db.session)).date()
    sessions = db.session.scalars(select(Booking).where(Booking.client_id == client.id)
                                  .order_by(Booking.start_at)).all()
    assert [b.status for b in sessions] == ["completed"] * len(demo.COURSE)
    assert all(b.end_at < now for b in sessions)
    records = db.session.scalars(select(SessionRecord).order_by(SessionRecord.session_number)
                                 ).all()
    assert [r.session_number for r in records] == [1, 2, 3, 4]
    assert [r.intensity for r in records] == [c[1] for c in demo.COURSE]
    # The soreness trend: 7, 5, 3 after the first three sessions; the last one unanswered.
    soreness = [db.session.scalar(select(CheckIn.soreness).where(CheckIn.booking_id == b.id))
                for b in sessions]
    assert soreness == [7, 5, 3, None]
    # "Your next session: between X and Y", still ahead.
    rec = care.current_recommendation(db.session, client)
    assert rec is not None and rec.booking_id == sessions[-1].id
    assert rec.latest is not None and rec.latest >= today and rec.action == "book"
    # The last session's check-in email is due and waiting to be delivered; older mail is
    # recorded as sent at its time.
    waiting = db.session.scalars(select(OutboxMessage).where(
        OutboxMessage.status == "pending", OutboxMessage.due_at <= now,
        OutboxMessage.to_addr == demo.DEMO_CLIENT)).all()
    assert [(m.kind, m.booking_id, m.to_addr) for m in waiting] == [
        ("checkin_24h", sessions[-1].id, demo.DEMO_CLIENT)]
    # Every therapist has bookings in the coming week.
    week_end = now + timedelta(days=8)
    for therapist in db.session.scalars(select(Therapist)).all():
        count = db.session.scalar(select(func.count()).select_from(Booking).where(
            Booking.therapist_id == therapist.id, Booking.status == "booked",
            Booking.start_at > now, Booking.start_at < week_end))
        assert count >= 2, f"therapist {therapist.id} has {count} bookings this week"


def test_seed_course_is_idempotent(app, db, clock):
    assert demo.seed(db.session, clock.now()) is True
    db.session.commit()
    counts = (db.session.scalar(select(func.count()).select_from(Booking)),
              db.session.scalar(select(func.count()).select_from(OutboxMessage)))
    assert demo.seed_course(db.session, clock.now()) is False
    assert demo.seed(db.session, clock.now()) is False
    db.session.commit()
    assert (db.session.scalar(select(func.count()).select_from(Booking)),
            db.session.scalar(select(func.count()).select_from(OutboxMessage))) == counts


def test_seed_course_needs_the_demo_clinic(app, db, clock):
    assert demo.seed_course(db.session, clock.now()) is False
    assert db.session.scalar(select(func.count()).select_from(Booking)) == 0


def test_demo_client_sees_the_trend_window_and_check_in_link(app, db, client, clock):
    demo.seed(db.session, clock.now())
    db.session.commit()
    response = client.post("/login", data={"email": demo.DEMO_CLIENT,
                                           "password": demo.DEMO_PASSWORD})
    assert response.status_code == 302
    page = client.get("/appointments").get_data(as_text=True)
    assert "Your next session" in page and "between" in page
    assert "See every time in this window" in page
    # Maya, the demo therapist, sees the soreness trend on the client's page.
    client.post("/logout")
    assert client.post("/login", data={"email": "maya@clinic.example",
                                       "password": demo.DEMO_PASSWORD}).status_code == 302
    page = client.get(f"/therapist/clients/{_demo_client(db).id}").get_data(as_text=True)
    assert '<svg class="chart trend"' in page
    assert "soreness 7" in page and "soreness 5" in page and "soreness 3" in page
