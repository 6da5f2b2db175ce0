"""Booking notifications through the outbox, with a frozen clock that the tests move.

Jobs are called directly (``plan_due_messages_job``, ``dispatch_outbox_job``) as the worker
calls them; the dev mailbox shows what arrived, and when.
"""

from __future__ import annotations

from datetime import UTC
from datetime import date
from datetime import datetime
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from clinic_app.models import OutboxMessage
from clinic_app.models import User
from clinic_app.services.notify import events as notify_events
from clinic_app.services.settings import get_settings
from clinic_app.worker import daily_agenda_job
from clinic_app.worker import plan_due_messages_job
from tests.conftest import path_of
from tests.factories.notify import add_checkin
from tests.factories.notify import add_recommendation
from tests.factories.notify import cancel
from tests.factories.notify import complete
from tests.factories.notify import make_booking
from tests.factories.notify import make_clinic
from tests.factories.notify import move
from tests.factories.notify import rows
from tests.factories.notify import run_job

LONDON = ZoneInfo("Europe/London")
# The fixtures' clock: Mon 23 Nov 2026 08:00 UTC. The booking: Wed 25 Nov, 10:00-11:00 GMT.
START = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)


class Feed:
    """What arrives in the dev mailbox after each run of the planner and the dispatcher."""

    def __init__(self, app, mailbox, clock):
        self.app, self.mailbox, self.clock, self.count = app, mailbox, clock, 0

    def at(self, moment: datetime) -> list[tuple[str, str]]:
        """Move the clock to ``moment``, run the jobs, return the new (to, subject) pairs."""
        self.clock.set(moment)
        run_job(plan_due_messages_job, self.app)
        messages = self.mailbox.deliver()
        new, self.count = messages[self.count:], len(messages)
        return [(str(m["To"]), str(m["Subject"])) for m in new]

    def last(self, n: int = 1):
        return self.mailbox.messages()[-n:]


@pytest.fixture
def feed(app, mailbox, clock):
    return Feed(app, mailbox, clock)


@pytest.fixture
def clinic(app, db):
    settings = get_settings(db.session)
    settings.name, settings.address = "Trigger Point Clinic", "12 Harbour Street, Bristol BS1 4AA"
    db.session.commit()
    return make_clinic(app)


def _ics(message) -> str:
    parts = [p for p in message.iter_attachments() if p.get_content_type() == "text/calendar"]
    assert len(parts) == 1, "one calendar file expected"
    content = parts[0].get_content()
    return content.decode() if isinstance(content, bytes) else content


def test_confirmation_goes_to_client_and_therapist_with_calendar_file(app, db, clinic, feed):
    booking = make_booking(app, clinic, START)
    got = feed.at(feed.clock.now())
    assert sorted(to for to, _ in got) == ["client@example.com", "maya@example.com"]
    client_mail, therapist_mail = sorted(feed.last(2), key=lambda m: str(m["To"]))
    assert client_mail["Subject"] == "Booking confirmed: Wed 25 Nov 2026, 10:00 GMT"
    assert therapist_mail["Subject"].startswith("New booking: Wed 25 Nov 2026, 10:00 GMT")
    for message in (client_mail, therapist_mail):
        text = feed.mailbox.text(message)
        html = message.get_body(preferencelist=("html",)).get_content()
        for body in (text, html):
            assert "Trigger Point Clinic" in body and "12 Harbour Street, Bristol" in body
            assert "Wed 25 Nov 2026, 10:00 GMT (Europe/London)" in body
        ics = _ics(message)
        assert "METHOD:REQUEST" in ics and f"UID:booking-{booking.id}@clinic.test" in ics
        assert "SEQUENCE:0" in ics
    assert "Casey Client booked an appointment" in feed.mailbox.text(therapist_mail)
    assert "up to 24 hours before" in feed.mailbox.text(client_mail)  # the policy
    keys = {r.key for r in rows("booking_confirmation")}
    assert keys == {f"booking:{booking.id}:confirmation:0:client",
                    f"booking:{booking.id}:confirmation:0:therapist"}
    # Nothing goes twice, however often the jobs run.
    assert feed.at(feed.clock.now()) == []


def test_every_message_of_the_schedule_arrives_once_on_time(app, db, clinic, feed):
    booking = make_booking(app, clinic, START)
    assert len(feed.at(datetime(2026, 11, 23, 8, 0, tzinfo=UTC))) == 2  # confirmations
    # 48 h reminder: due Mon 10:00 UTC, not a second earlier.
    assert feed.at(datetime(2026, 11, 23, 9, 59, 59, tzinfo=UTC)) == []
    got = feed.at(datetime(2026, 11, 23, 10, 0, tzinfo=UTC))
    assert got == [("client@example.com",
                    "Reminder: your appointment on Wed 25 Nov 2026, 10:00 GMT")]
    assert "Cancellation policy" in feed.mailbox.text(feed.last()[0])
    assert feed.at(datetime(2026, 11, 24, 9, 59, tzinfo=UTC)) == []
    assert len(feed.at(datetime(2026, 11, 24, 10, 0, tzinfo=UTC))) == 1  # 24 h reminder
    # The session happens; the therapist records it at 11:30.
    assert feed.at(datetime(2026, 11, 25, 11, 30, tzinfo=UTC)) == []
    complete(app, booking)
    # Aftercare at end + 3 h = 14:00.
    assert feed.at(datetime(2026, 11, 25, 13, 59, tzinfo=UTC)) == []
    got = feed.at(datetime(2026, 11, 25, 14, 0, tzinfo=UTC))
    assert got == [("client@example.com", "After your session: looking after yourself")]
    # Soreness check-in at end + 24 h, with a link to the check-in page.
    assert feed.at(datetime(2026, 11, 26, 10, 59, tzinfo=UTC)) == []
    got = feed.at(datetime(2026, 11, 26, 11, 0, tzinfo=UTC))
    assert got == [("client@example.com", "How are you feeling after your session?")]
    link = [u for u in feed.mailbox.text(feed.last()[0]).split() if "/check-in/" in u]
    assert link and link[0].startswith("http://clinic.test/check-in/")
    # Soreness 5 (>= 4): "still sore?" at end + 72 h = Sat 11:00.
    add_checkin(app, booking, soreness=5)
    assert feed.at(datetime(2026, 11, 28, 10, 59, tzinfo=UTC)) == []
    got = feed.at(datetime(2026, 11, 28, 11, 0, tzinfo=UTC))
    assert got == [("client@example.com", "Still sore after your session?")]
    # Rebooking prompt at the ideal date, 10:00 clinic time; only once.
    add_recommendation(app, booking, earliest=date(2026, 12, 2), ideal=date(2026, 12, 3),
                       latest=date(2026, 12, 9))
    assert feed.at(datetime(2026, 12, 3, 9, 59, tzinfo=UTC)) == []
    got = feed.at(datetime(2026, 12, 3, 10, 0, tzinfo=UTC))
    assert got == [("client@example.com", "Time to book your next session")]
    assert feed.at(datetime(2026, 12, 5, 10, 0, tzinfo=UTC)) == []
    # Recall 8 weeks after the visit (no visit since, nothing booked).
    assert feed.at(datetime(2027, 1, 20, 10, 59, tzinfo=UTC)) == []
    got = feed.at(datetime(2027, 1, 20, 11, 0, tzinfo=UTC))
    assert got == [("client@example.com", "We have not seen you for a while")]
    assert feed.at(datetime(2027, 2, 20, 11, 0, tzinfo=UTC)) == []
    sent = db.session.scalars(select(OutboxMessage.kind).where(OutboxMessage.status == "sent"))
    assert sorted(sent) == sorted(["booking_confirmation"] * 2 + ["reminder"] * 2 + [
        "aftercare", "checkin_24h", "checkin_72h", "rebooking_prompt", "recall"])


def test_no_reminder_or_aftercare_after_a_cancellation(app, db, clinic, feed):
    booking = make_booking(app, clinic, START)
    feed.at(feed.clock.now())
    cancel(app, booking)
    got = feed.at(feed.clock.now())
    assert sorted(to for to, _ in got) == ["client@example.com", "maya@example.com"]
    assert all(subject.startswith("Booking cancelled") for _, subject in got)
    for message in feed.last(2):
        ics = _ics(message)
        assert "METHOD:CANCEL" in ics and "SEQUENCE:1" in ics
        assert f"UID:booking-{booking.id}@clinic.test" in ics
    assert {r.status for r in rows("reminder")} == {"retired"}
    for day in range(1, 10):  # through the whole schedule
        assert feed.at(START + timedelta(days=day - 3)) == []


def test_send_check_stops_a_reminder_even_if_retiring_was_missed(app, db, clinic, feed):
    booking = make_booking(app, clinic, START)
    feed.at(feed.clock.now())
    booking.status = "cancelled"  # no booking_cancelled call: the rows stay pending
    db.session.commit()
    assert feed.at(START + timedelta(hours=4)) == []
    reminders = rows("reminder")
    assert [r.status for r in reminders] == ["retired", "retired"]
    assert {r.last_error for r in reminders} == {"booking cancelled"}
    assert rows("aftercare") == []  # only a completed session ever gets aftercare


def test_unhappy_no_check_in_for_a_booking_that_was_not_completed(app, db, clinic, feed):
    booking = make_booking(app, clinic, START)
    feed.at(feed.clock.now())
    # The worker was down until two days after the visit: the reminders are out of date
    # (the visit has started) and an uncompleted booking gets no aftercare.
    assert feed.at(START + timedelta(days=2)) == []
    assert {r.last_error for r in rows("reminder")} == {"appointment already started"}
    assert rows("aftercare") == [] and rows("checkin_24h") == []  # the booking is not completed
    booking.status = "no_show"
    db.session.commit()
    assert feed.at(START + timedelta(days=5)) == []
    # And a check-in row for a booking that is no longer completed is skipped at send time.
    other = make_booking(app, clinic, START + timedelta(days=7))
    feed.clock.set(other.end_at)
    complete(app, other)
    other.status = "no_show"
    db.session.commit()
    assert "How are you feeling after your session?" not in [
        s for _, s in feed.at(other.end_at + timedelta(days=2))]
    assert rows("checkin_24h")[0].status == "retired"


def test_a_worker_down_past_the_24h_reminder_sends_only_that_one(app, db, clinic, feed):
    """Back 20 h before the visit: the 48 h reminder is out of date beside the 24 h one."""
    booking = make_booking(app, clinic, START + timedelta(days=3))
    feed.at(feed.clock.now())  # the confirmations
    got = feed.at(booking.start_at - timedelta(hours=20))
    assert [subject for _, subject in got] == [
        "Reminder: your appointment on Sat 28 Nov 2026, 10:00 GMT"]
    assert "in 24 hours" in feed.mailbox.text(feed.last(1)[0])
    by_hours = {r.params["hours"]: r for r in rows("reminder")}
    assert (by_hours[48].status, by_hours[48].last_error) == (
        "retired", "the 24 h reminder is already due")
    assert by_hours[24].status == "sent"


def test_a_reschedule_moves_the_reminders(app, db, clinic, feed):
    booking = make_booking(app, clinic, START)
    feed.at(feed.clock.now())
    new_start = START + timedelta(days=2, hours=3)  # Fri 27 Nov, 13:00 GMT
    move(app, booking, new_start)
    got = feed.at(feed.clock.now())
    assert sorted(to for to, _ in got) == ["client@example.com", "maya@example.com"]
    assert all(s == "Booking moved: Fri 27 Nov 2026, 13:00 GMT" for _, s in got)
    change = feed.last(2)[0]
    assert "Wed 25 Nov 2026, 10:00 GMT" in feed.mailbox.text(change)  # what it was
    assert "SEQUENCE:1" in _ics(change) and "METHOD:REQUEST" in _ics(change)
    pending = {r.key: r.due_at for r in rows("reminder") if r.status == "pending"}
    stamp = new_start.isoformat()
    assert pending == {
        f"booking:{booking.id}:reminder-48h:{stamp}": new_start - timedelta(hours=48),
        f"booking:{booking.id}:reminder-24h:{stamp}": new_start - timedelta(hours=24),
    }
    # Nothing at the old times; each reminder at its new time, once.
    assert feed.at(START - timedelta(hours=48)) == []
    assert feed.at(START - timedelta(hours=24)) == []
    assert len(feed.at(new_start - timedelta(hours=48))) == 1
    assert feed.at(START + timedelta(hours=5)) == []  # the old aftercare time
    assert len(feed.at(new_start - timedelta(hours=24))) == 1
    assert feed.at(new_start - timedelta(hours=1)) == []


def test_a_moved_booking_skips_its_stale_reminder_at_send_time(app, db, clinic, feed):
    booking = make_booking(app, clinic, START)
    feed.at(feed.clock.now())
    # Moved without booking_changed (say, by hand in the database): the key's start is stale.
    booking.start_at, booking.end_at = START + timedelta(hours=2), START + timedelta(hours=3)
    booking.blocked_start, booking.blocked_end = booking.start_at, booking.end_at
    db.session.commit()
    assert feed.at(START - timedelta(hours=24)) == []
    assert {r.last_error for r in rows("reminder")} == {"booking moved"}


def test_24h_reminder_across_the_dst_change_fires_at_the_exact_instant(app, db, clinic, feed):
    """Europe/London goes to BST at 01:00 UTC on Sun 29 March 2026. A 09:00 BST appointment
    on Mon 30 March starts at 08:00 UTC; "24 h before" is 24 elapsed hours: 08:00 UTC on the
    29th, which is 09:00 BST there. The 48 h reminder is 08:00 UTC on the 28th: still GMT,
    so 08:00 on the clock."""
    feed.clock.set(datetime(2026, 3, 20, 9, 0, tzinfo=UTC))
    start = datetime(2026, 3, 30, 9, 0, tzinfo=LONDON)
    assert start.astimezone(UTC) == datetime(2026, 3, 30, 8, 0, tzinfo=UTC)
    booking = make_booking(app, clinic, start.astimezone(UTC))
    feed.at(feed.clock.now())
    due = {r.key.split(":")[2]: r.due_at for r in rows("reminder")}
    assert due["reminder-24h"] == datetime(2026, 3, 29, 8, 0, tzinfo=UTC)
    assert due["reminder-24h"].astimezone(LONDON).strftime("%H:%M %Z") == "09:00 BST"
    assert due["reminder-48h"] == datetime(2026, 3, 28, 8, 0, tzinfo=UTC)
    assert due["reminder-48h"].astimezone(LONDON).strftime("%H:%M %Z") == "08:00 GMT"
    assert len(feed.at(datetime(2026, 3, 28, 8, 0, tzinfo=UTC))) == 1
    assert feed.at(datetime(2026, 3, 29, 7, 59, 59, tzinfo=UTC)) == []
    got = feed.at(datetime(2026, 3, 29, 8, 0, tzinfo=UTC))
    assert got == [("client@example.com",
                    "Reminder: your appointment on Mon 30 Mar 2026, 09:00 BST")]
    assert booking.id


def test_reminders_already_past_at_booking_time_are_not_written(app, db, clinic, feed):
    make_booking(app, clinic, feed.clock.now() + timedelta(hours=30))
    assert [r.key.split(":")[2] for r in rows("reminder")] == ["reminder-24h"]
    make_booking(app, clinic, feed.clock.now() + timedelta(hours=6))
    assert len(rows("reminder")) == 1


def test_aftercare_content(app, db, clinic, feed):
    booking = make_booking(app, clinic, START)
    feed.clock.set(booking.end_at + timedelta(minutes=10))
    complete(app, booking)
    feed.at(booking.end_at + timedelta(hours=2, minutes=59))
    assert not [m for m in feed.mailbox.messages() if "After your session" in m["Subject"]]
    feed.at(booking.end_at + timedelta(hours=3))
    aftercare = [m for m in feed.mailbox.messages() if "After your session" in m["Subject"]][0]
    text = feed.mailbox.text(aftercare)
    assert "no heat and no massage" in text and "fresh injury" in text
    assert "Calf pain, swelling or warmth in one leg" in text
    assert "Sudden breathlessness or chest pain" in text and "Fever" in text
    assert "call 999" in text and "NHS 111" in text
    assert "flush toxins" in text and "below about 5 out" in text
    assert aftercare["List-Unsubscribe"] is None  # essential: no opt-out


def test_still_sore_only_when_the_24h_soreness_was_4_or_more(app, db, clinic, feed):
    mild = make_booking(app, clinic, START)
    other_client = make_clinic_client(app)
    sore = make_booking(app, clinic, START + timedelta(hours=2), client=other_client)
    feed.clock.set(START + timedelta(hours=4))
    complete(app, mild)
    complete(app, sore)
    add_checkin(app, mild, soreness=3)
    add_checkin(app, sore, soreness=4)
    feed.at(START + timedelta(hours=30))
    assert feed.at(START + timedelta(hours=74)) == []
    got = feed.at(START + timedelta(hours=75))
    assert got == [("other@example.com", "Still sore after your session?")]
    assert len(rows("checkin_72h")) == 1
    # No more check-ins. Completing through care.complete_session recorded each session, so
    # each client's recommendation (ideal Sun 29 Nov) brings its rebooking prompt.
    assert feed.at(START + timedelta(days=6)) == [
        ("client@example.com", "Time to book your next session"),
        ("other@example.com", "Time to book your next session"),
    ]


def make_clinic_client(app):
    from tests.factories import make_user

    return make_user(app, email="other@example.com", name="Olu Other")


def test_rebooking_prompt_carries_unsubscribe_and_is_skipped_with_a_future_booking(
    app, db, clinic, feed, client
):
    booking = make_booking(app, clinic, START)
    feed.clock.set(START + timedelta(hours=2))
    complete(app, booking)
    add_recommendation(app, booking, earliest=date(2026, 11, 28), ideal=date(2026, 11, 29),
                       latest=date(2026, 12, 3))
    feed.at(datetime(2026, 11, 29, 10, 0, tzinfo=UTC))
    prompt = [m for m in feed.mailbox.messages()
              if m["Subject"] == "Time to book your next session"]
    assert len(prompt) == 1
    text = feed.mailbox.text(prompt[0])
    assert "Sunday 29 November 2026" in text and "Thursday 03 December 2026" in text
    unsubscribe = prompt[0]["List-Unsubscribe"].strip().strip("<>")
    assert unsubscribe.startswith("http://clinic.test/unsubscribe/") and unsubscribe in text
    assert prompt[0]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    row = rows("rebooking_prompt")[0]
    assert row.essential is False

    # A second client with a future booking: the prompt is not sent.
    other = make_clinic_client(app)
    feed.clock.set(datetime(2026, 11, 30, 9, 0, tzinfo=UTC))
    visit = make_booking(app, clinic, datetime(2026, 11, 30, 12, 0, tzinfo=UTC), client=other)
    feed.clock.set(visit.end_at)
    complete(app, visit)
    add_recommendation(app, visit, earliest=date(2026, 12, 3), ideal=date(2026, 12, 4),
                       latest=date(2026, 12, 8))
    feed.at(feed.clock.now())  # the planner writes the prompt, due on the 4th
    make_booking(app, clinic, datetime(2026, 12, 7, 12, 0, tzinfo=UTC), client=other)
    got = feed.at(datetime(2026, 12, 4, 10, 0, tzinfo=UTC))
    assert ("other@example.com", "Time to book your next session") not in got
    skipped = [r for r in rows("rebooking_prompt") if r.user_id == other.id]
    assert [(r.status, r.last_error) for r in skipped] == [("retired", "a future booking exists")]


def test_unsubscribe_link_turns_prompts_off_without_login(app, db, clinic, feed, client):
    booking = make_booking(app, clinic, START)
    feed.clock.set(START + timedelta(hours=2))
    complete(app, booking)
    add_recommendation(app, booking, earliest=date(2026, 11, 28), ideal=date(2026, 11, 29),
                       latest=date(2026, 12, 3))
    feed.at(datetime(2026, 11, 29, 10, 0, tzinfo=UTC))
    link = path_of(feed.last()[0]["List-Unsubscribe"].strip().strip("<>"))
    page = client.get(link)  # a link scanner's GET changes nothing
    assert page.status_code == 200 and b"Turn them off" in page.data
    assert db.session.get(User, clinic.client.id).wants_prompts is True
    done = client.post(link, data={"List-Unsubscribe": "One-Click"})
    assert done.status_code == 200 and b"no more rebooking suggestions" in done.data
    db.session.expire_all()
    assert db.session.get(User, clinic.client.id).wants_prompts is False
    # Forged or altered tokens do nothing.
    assert client.post(link[:-3] + "xyz").status_code == 400
    assert client.get("/unsubscribe/not-a-token").status_code == 400
    # No recall now; essential messages still go.
    assert feed.at(datetime(2027, 1, 20, 12, 0, tzinfo=UTC)) == []
    make_booking(app, clinic, datetime(2027, 1, 25, 10, 0, tzinfo=UTC))
    got = feed.at(feed.clock.now())
    assert ("client@example.com",
            "Booking confirmed: Mon 25 Jan 2027, 10:00 GMT") in got


def test_opted_out_user_gets_no_prompt_even_if_already_queued(app, db, clinic, feed):
    booking = make_booking(app, clinic, START)
    feed.clock.set(START + timedelta(hours=2))
    complete(app, booking)
    add_recommendation(app, booking, earliest=date(2026, 11, 28), ideal=date(2026, 11, 29),
                       latest=date(2026, 12, 3))
    feed.at(feed.clock.now())
    assert rows("rebooking_prompt")[0].status == "pending"
    db.session.get(User, clinic.client.id).wants_prompts = False
    db.session.commit()
    got = feed.at(datetime(2026, 11, 29, 10, 0, tzinfo=UTC))
    assert ("client@example.com", "Time to book your next session") not in got
    assert rows("rebooking_prompt")[0].last_error == "recipient opted out"


def test_recall_is_not_sent_when_the_client_has_a_booking(app, db, clinic, feed):
    booking = make_booking(app, clinic, START)
    feed.clock.set(START + timedelta(hours=2))
    complete(app, booking)
    make_booking(app, clinic, datetime(2027, 2, 1, 10, 0, tzinfo=UTC))
    got = feed.at(datetime(2027, 1, 20, 11, 0, tzinfo=UTC))
    assert ("client@example.com", "We have not seen you for a while") not in got
    assert rows("recall") == []


def test_daily_agenda_at_seven_for_therapists_with_bookings(app, db, clinic, feed):
    from tests.factories import make_therapist

    make_therapist(app, name="Tom Idle", email="tom@example.com")  # nothing booked
    make_booking(app, clinic, START)
    make_booking(app, clinic, START + timedelta(hours=3), client=make_clinic_client(app))
    feed.at(feed.clock.now())
    feed.clock.set(datetime(2026, 11, 25, 7, 0, tzinfo=UTC))  # 07:00 GMT
    assert run_job(daily_agenda_job, app) == 1
    assert run_job(daily_agenda_job, app) == 0  # once a day
    got = [m for m in feed.at(feed.clock.now()) if m[1].startswith("Your day")]
    assert got == [("maya@example.com",
                    "Your day: Wednesday 25 November 2026 (2 appointments)")]
    # The agenda itself (a reminder due in the same minute may be delivered after it).
    (agenda,) = [m for m in feed.mailbox.messages() if str(m["Subject"]).startswith("Your day")]
    text = feed.mailbox.text(agenda)
    assert "10:00-11:00 GMT  Casey Client" in text and "13:00-14:00 GMT  Olu Other" in text
    assert "Europe/London" in text


def test_pending_booking_asks_the_therapist_and_confirmation_follows(app, db, clinic, feed):
    booking = make_booking(app, clinic, START, status="pending")
    got = dict(feed.at(feed.clock.now()))
    assert got["client@example.com"].startswith("Booking request received")
    assert got["maya@example.com"].startswith("Booking request to confirm")
    booking.status, booking.sequence = "booked", 1
    db.session.flush()
    notify_events.booking_changed(db.session, booking, booking.start_at, feed.clock.now())
    db.session.commit()
    got = dict(feed.at(feed.clock.now()))
    assert got["client@example.com"].startswith("Booking updated")
    assert "has been updated and is confirmed" in feed.mailbox.text(
        [m for m in feed.last(2) if "client@" in str(m["To"])][0])
    assert len([r for r in rows("reminder") if r.status == "pending"]) == 2
