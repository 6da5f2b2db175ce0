"""The admin dashboard's continuity panel (issue 13 item 4): where follow-ups landed
relative to the window current when they were booked, how many rebooking prompts and recalls
a booking followed within 7 days, the waitlist offers made and how long their freed slots
stayed empty, and a 12-week chart with its table."""

from __future__ import annotations

from datetime import UTC
from datetime import date
from datetime import datetime
from datetime import time
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import event
from sqlalchemy import select

from clinic_app.models import Booking
from clinic_app.models import WaitlistOffer
from clinic_app.services import holds
from clinic_app.services import waitlist_offers
from clinic_app.services.continuity import continuity_panel
from clinic_app.services.continuity import offer_figures
from clinic_app.worker import plan_due_messages_job
from tests.conftest import START
from tests.factories import make_user
from tests.factories.accounts import login
from tests.factories.accounts import now_of
from tests.factories.booking import make_clinic
from tests.factories.booking import raw_booking
from tests.factories.care import add_recommendation
from tests.factories.care import complete
from tests.factories.care import recorded_session
from tests.factories.notify import cancel
from tests.factories.notify import outbox_row
from tests.factories.notify import rows
from tests.factories.notify import run_job
from tests.factories.schedule import local
from tests.factories.waitlist import cancel_and_offer
from tests.factories.waitlist import make_offer
from tests.factories.waitlist import make_scene

LONDON = ZoneInfo("Europe/London")
WEEK = date(2026, 11, 23)


@pytest.fixture
def clinic(app):
    return make_clinic(app)


def follow_up(app, clinic, client, start):
    return raw_booking(app, client=client, therapist=clinic.t1, room=clinic.rooms[0],
                       service=clinic.service, start=start)


def test_follow_ups_by_window(app, clinic, db):
    # Each client: a session on Fri 20 Nov, soreness 2 -> window 22 / 24 / 28 Nov.
    inside, early, late = clinic.client, make_user(app), make_user(app)
    for person, hour in ((inside, 9), (early, 13), (late, 15)):
        recorded_session(app, clinic, local(2026, 11, 20, hour), client=person, soreness=2)
    follow_up(app, clinic, inside, local(2026, 11, 25, 10))
    # Booked before the window opened (the 21st is before earliest): "before earliest".
    follow_up(app, clinic, early, local(2026, 11, 21, 13))
    follow_up(app, clinic, late, local(2026, 11, 30, 10))  # next week: after latest
    # A first visit with no recommendation is not a follow-up.
    follow_up(app, clinic, make_user(app), local(2026, 11, 26, 10))

    panel = continuity_panel(db.session, WEEK, LONDON, now=now_of(app))
    assert (panel.current.inside, panel.current.before_earliest,
            panel.current.after_latest) == (1, 0, 0)
    weeks = dict(panel.weeks)
    assert len(panel.weeks) == 12 and panel.weeks[-1][0] == WEEK
    # The 21st is in the week of 16 Nov.
    assert weeks[date(2026, 11, 16)].before_earliest == 1
    later = continuity_panel(db.session, date(2026, 11, 30), LONDON, now=now_of(app))
    assert later.current.after_latest == 1 and later.current.share(1) == 1.0


def test_no_follow_ups_gives_no_share(app, db):
    panel = continuity_panel(db.session, WEEK, LONDON, now=now_of(app))
    assert panel.current.total == 0 and panel.current.share(0) is None


def test_the_dashboard_shows_the_panel(app, client, clinic):
    recorded_session(app, clinic, local(2026, 11, 20, 10), soreness=2)
    follow_up(app, clinic, clinic.client, local(2026, 11, 25, 10))
    login(client, clinic.admin)
    page = client.get("/admin/?week=2026-11-23")
    assert page.status_code == 200
    assert b"Continuity" in page.data and b"1 of 1 follow-ups" in page.data
    assert b"continuity-title" in page.data


# --- rebooking-prompt and recall conversion ---------------------------------------------------
# The frozen clock reads Mon 23 Nov 2026 08:00 UTC (conftest.START). The emails below go out
# on Tue 10 Nov (the week of 9 Nov): their 7 days are over by then, so none is still waiting.

PROMPT, RECALL = "rebooking_prompt", "recall"
SENT = datetime(2026, 11, 10, 10, 0, tzinfo=UTC)
SENT_WEEK = date(2026, 11, 9)


def booking_made(app, clock, clinic, client, at, start):
    """A booking for ``client`` made (``created_at``) at ``at``, for ``start`` (all on one
    therapist and room: keep starts 2 hours apart, the service blocks 75 minutes)."""
    clock.set(at)
    try:
        return follow_up(app, clinic, client, start)
    finally:
        clock.set(START)


def emails_of(db, week=SENT_WEEK, now=START):
    return continuity_panel(db.session, week, LONDON, now=now).emails


def test_a_booking_within_7_days_converts_and_one_at_7_days_and_a_second_does_not(
        app, clinic, clock, db):
    on_time, late, early = make_user(app), make_user(app), make_user(app)
    for person in (on_time, late, early):
        outbox_row(app, kind=PROMPT, user=person, at=SENT)
    # Exactly 7 days (168 h) after the send still counts ("within 7 days", both ends in).
    booking_made(app, clock, clinic, on_time, SENT + timedelta(days=7), local(2026, 12, 1, 9))
    booking_made(app, clock, clinic, late, SENT + timedelta(days=7, seconds=1),
                 local(2026, 12, 1, 11))
    # Made before the email went: the email cannot have led to it.
    booking_made(app, clock, clinic, early, SENT - timedelta(seconds=1), local(2026, 12, 1, 13))

    prompts = emails_of(db).prompts
    assert (prompts.sent, prompts.converted, prompts.waiting) == (3, 1, 0)
    assert prompts.share == pytest.approx(1 / 3)


def test_prompts_and_recalls_are_counted_apart(app, clinic, clock, db):
    prompted, recalled, both = make_user(app), make_user(app), make_user(app)
    outbox_row(app, kind=PROMPT, user=prompted, at=SENT)
    outbox_row(app, kind=RECALL, user=recalled, at=SENT)
    outbox_row(app, kind=RECALL, user=both, at=SENT + timedelta(hours=1))
    booking_made(app, clock, clinic, recalled, SENT + timedelta(days=2), local(2026, 12, 2, 9))
    # Other kinds (a reminder, an aftercare email) are not counted at all.
    outbox_row(app, kind="reminder", user=prompted, at=SENT)
    outbox_row(app, kind="aftercare", user=recalled, at=SENT)

    emails = emails_of(db)
    assert (emails.prompts.sent, emails.prompts.converted) == (1, 0)
    assert (emails.recalls.sent, emails.recalls.converted) == (2, 1)
    assert emails.sent == 3 and emails.recalls.share == 0.5 and emails.prompts.share == 0


@pytest.mark.parametrize("status", ["retired", "failed", "dead", "pending", "sending"])
def test_an_email_that_was_not_sent_is_not_counted(app, clinic, clock, db, status):
    """Only ``sent`` rows reached the client: a retired prompt (the client booked, or a newer
    recommendation replaced it), a failed or dead one, or one still waiting, is no email."""
    person = make_user(app)
    outbox_row(app, kind=PROMPT, user=person, at=SENT, status=status)
    booking_made(app, clock, clinic, person, SENT + timedelta(days=1), local(2026, 12, 2, 10))

    emails = emails_of(db)
    assert emails.sent == 0 and emails.prompts.converted == 0
    assert emails.prompts.share is None


def test_a_hold_is_not_a_booking_until_it_is_converted(app, clinic, clock, db):
    held_only, converted = make_user(app), make_user(app)
    outbox_row(app, kind=PROMPT, user=held_only, at=SENT)
    outbox_row(app, kind=PROMPT, user=converted, at=SENT)
    at = SENT + timedelta(days=1)  # Wed 11 Nov 10:00 UTC
    for person, start in ((held_only, local(2026, 11, 13, 10)),
                          (converted, local(2026, 11, 13, 14))):
        holds.place_hold(db.session, service_id=clinic.service.id, start=start,
                         therapist_id=clinic.t1.id, client_id=person.id, purpose="offer",
                         minutes=30, now=at)
    db.session.commit()
    assert emails_of(db).prompts.converted == 0  # two holds, no booking
    hold = db.session.scalar(select(Booking).where(Booking.client_id == converted.id)
                             .execution_options(include_holds=True))
    holds.convert_hold(db.session, hold, client=converted, actor=converted,
                       now=at + timedelta(minutes=10))
    db.session.commit()

    prompts = emails_of(db).prompts
    assert (prompts.sent, prompts.converted) == (2, 1)


def test_a_booking_cancelled_later_still_counts_as_a_conversion(app, clinic, clock, db):
    """The email's job was to get the client to book, and they did: what happened to the
    booking afterwards is counted where cancellations are (the week's cancellations), and a
    week's conversion does not drop later whenever one of its clients cancels."""
    person = make_user(app)
    outbox_row(app, kind=RECALL, user=person, at=SENT)
    booking = booking_made(app, clock, clinic, person, SENT + timedelta(days=3),
                           local(2026, 12, 3, 10))
    clock.set(SENT + timedelta(days=4))
    cancel(app, booking)
    clock.set(START)
    assert booking.status == "cancelled"

    recalls = emails_of(db).recalls
    assert (recalls.sent, recalls.converted, recalls.share) == (1, 1, 1.0)


def test_an_email_of_the_last_7_days_without_a_booking_is_still_waiting(app, clinic, clock, db):
    person, booked = make_user(app), make_user(app)
    yesterday = START - timedelta(days=1)  # Sun 22 Nov: the week of 16 Nov
    outbox_row(app, kind=PROMPT, user=person, at=yesterday)
    outbox_row(app, kind=PROMPT, user=booked, at=yesterday)
    booking_made(app, clock, clinic, booked, yesterday + timedelta(hours=2),
                 local(2026, 12, 4, 10))

    prompts = emails_of(db, week=date(2026, 11, 16)).prompts
    assert (prompts.sent, prompts.converted, prompts.waiting) == (2, 1, 1)
    # Once the 7 days are over, it is simply not converted.
    later = emails_of(db, week=date(2026, 11, 16), now=yesterday + timedelta(days=7, seconds=1))
    assert (later.prompts.converted, later.prompts.waiting) == (1, 0)


def test_the_empty_period_has_no_share(app, db):
    emails = emails_of(db)
    assert emails.sent == 0 and emails.kept
    assert emails.prompts.share is None and emails.recalls.share is None


def test_weeks_older_than_the_outbox_keeps_sent_rows_are_marked_not_kept(app, clinic, db):
    """``mail.outbox.purge`` deletes sent rows after 90 days: such a week would read low."""
    panel = continuity_panel(db.session, date(2026, 8, 24), LONDON, now=START)
    kept = {week: figures.kept for week, figures in panel.email_weeks}
    # 90 days before Mon 23 Nov 08:00 UTC is Tue 25 Aug 08:00 UTC.
    assert kept[date(2026, 8, 24)] is False and kept[date(2026, 8, 17)] is False
    assert panel.emails.kept is False
    assert continuity_panel(db.session, date(2026, 8, 31), LONDON, now=START).emails.kept


@pytest.mark.parametrize(("week", "inside", "outside"), [
    # Spring forward, Sun 29 Mar 2026: the week of 23 Mar runs from Sun 22 Mar 24:00 GMT
    # (00:00 UTC) to Sun 29 Mar 24:00 BST (23:00 UTC): 167 hours.
    (date(2026, 3, 23),
     [datetime(2026, 3, 23, 0, 0, tzinfo=UTC), datetime(2026, 3, 29, 22, 59, 59, tzinfo=UTC)],
     [datetime(2026, 3, 22, 23, 59, 59, tzinfo=UTC), datetime(2026, 3, 29, 23, 0, tzinfo=UTC)]),
    # Fall back, Sun 25 Oct 2026: the week of 19 Oct runs from Sun 18 Oct 24:00 BST (23:00
    # UTC) to Sun 25 Oct 24:00 GMT (Mon 26 Oct 00:00 UTC): 169 hours.
    (date(2026, 10, 19),
     [datetime(2026, 10, 18, 23, 0, tzinfo=UTC), datetime(2026, 10, 25, 23, 59, 59, tzinfo=UTC)],
     [datetime(2026, 10, 18, 22, 59, 59, tzinfo=UTC), datetime(2026, 10, 26, 0, 0, tzinfo=UTC)]),
])
def test_weeks_are_the_clinic_zones_across_the_dst_change(app, clinic, clock, db, week, inside,
                                                          outside):
    now = datetime.combine(week + timedelta(days=21), time(12), tzinfo=UTC)
    people = [make_user(app) for _ in inside + outside]
    for person, at in zip(people, inside + outside, strict=True):
        outbox_row(app, kind=RECALL, user=person, at=at)
    # The first email's client books 7 x 24 elapsed hours later, across the change.
    first = inside[0]
    booking_made(app, clock, clinic, people[0], first + timedelta(days=7),
                 datetime.combine(week + timedelta(days=15), time(10), tzinfo=UTC))
    booking_made(app, clock, clinic, people[1], inside[1] + timedelta(days=7, seconds=1),
                 datetime.combine(week + timedelta(days=15), time(14), tzinfo=UTC))

    panel = continuity_panel(db.session, week, LONDON, now=now)
    assert (panel.emails.recalls.sent, panel.emails.recalls.converted) == (2, 1)
    weeks = dict(panel.email_weeks)
    assert weeks[week - timedelta(weeks=1)].recalls.sent == 1  # the one just before
    # The one just after is in the next week, outside this chart; its own chart has it.
    after = continuity_panel(db.session, week + timedelta(weeks=1), LONDON, now=now)
    assert after.emails.recalls.sent == 1


def test_conversion_takes_two_queries_whatever_the_number_of_emails(app, clinic, clock, db):
    def selects() -> int:
        count = [0]

        def counter(conn, cursor, statement, *args):
            count[0] += statement.lstrip().upper().startswith("SELECT")

        engine = db.engine
        event.listen(engine, "before_cursor_execute", counter)
        try:
            emails_of(db)
        finally:
            event.remove(engine, "before_cursor_execute", counter)
        return count[0]

    first = make_user(app)
    outbox_row(app, kind=PROMPT, user=first, at=SENT)
    booking_made(app, clock, clinic, first, SENT + timedelta(days=1), local(2026, 12, 7, 9))
    one = selects()
    for i in range(20):
        person = make_user(app)
        outbox_row(app, kind=PROMPT if i % 2 else RECALL, user=person,
                   at=SENT + timedelta(minutes=i))
        booking_made(app, clock, clinic, person, SENT + timedelta(days=1, minutes=i),
                     local(2026, 12, 8 + i // 4, 9 + 2 * (i % 4)))
    # Conversion takes two queries (the sent rows, their recipients' bookings), adherence one
    # or two (none of these bookings is in its weeks): the same count for 1 or 21 emails.
    assert selects() == one and one <= 4
    assert emails_of(db).sent == 21


def test_a_real_prompt_sent_by_the_worker_then_a_booking_is_a_conversion(app, clinic, clock, db,
                                                                         mailbox):
    """The planner writes the prompt and the dispatcher sends it (kind, recipient and sent_at
    as the real rows have them); the client then books and the panel counts it."""
    person = clinic.client
    session_start = local(2026, 11, 25, 10)
    done = raw_booking(app, client=person, therapist=clinic.t1, room=clinic.rooms[0],
                       service=clinic.service, start=session_start)
    clock.set(session_start + timedelta(hours=2))
    complete(app, done)
    add_recommendation(app, done, earliest=date(2026, 11, 28), ideal=date(2026, 11, 30),
                       latest=date(2026, 12, 3))
    clock.set(datetime(2026, 11, 30, 10, 5, tzinfo=UTC))  # the ideal date, after 10:00
    run_job(plan_due_messages_job, app)
    mailbox.deliver()
    db.session.expire_all()
    (prompt,) = rows(PROMPT)
    assert prompt.status == "sent" and prompt.user_id == person.id
    booking_made(app, clock, clinic, person, prompt.sent_at + timedelta(days=2),
                 local(2026, 12, 3, 10))

    panel = continuity_panel(db.session, date(2026, 11, 30), LONDON,
                             now=datetime(2026, 12, 14, tzinfo=UTC))
    assert (panel.emails.prompts.sent, panel.emails.prompts.converted) == (1, 1)


# --- the page ---------------------------------------------------------------------------------


def test_the_dashboard_shows_the_conversion_of_the_chosen_week(app, client, clinic, clock):
    converted, not_yet = make_user(app), make_user(app)
    outbox_row(app, kind=PROMPT, user=converted, at=SENT)
    outbox_row(app, kind=PROMPT, user=not_yet, at=SENT)
    booking_made(app, clock, clinic, converted, SENT + timedelta(days=1), local(2026, 12, 1, 9))
    login(client, clinic.admin)
    # Any day of the week shows that week (Thu 12 Nov: the week of 9 Nov).
    page = client.get("/admin/?week=2026-11-12").get_data(as_text=True)
    assert "Continuity, week of 09 Nov 2026" in page
    assert "Rebooking prompts</small>" in page and "1 of 2 sent led to a booking" in page
    assert "Recalls</small>" in page and "No emails sent" in page
    assert '<desc id="continuity-desc">' in page
    # The table gives the chart's figures as text: this week is the last row.
    assert '<th scope="row">09 Nov</th>' in page
    assert '1 of 2</span> <span class="nowrap">(50%)' in page
    # The week after shows none of it.
    page = client.get("/admin/?week=2026-11-16").get_data(as_text=True)
    assert "No emails sent this week" in page


def test_the_dashboard_of_a_week_without_emails_says_so(app, client, clinic):
    login(client, clinic.admin)
    page = client.get("/admin/?week=2026-11-23")
    assert page.status_code == 200
    assert b"No emails sent this week" in page.data and b"No follow-up sessions" in page.data
    old = client.get("/admin/?week=2026-06-01")
    assert old.status_code == 200 and b"Not kept: sent emails are deleted after 90 days" in old.data


@pytest.mark.parametrize(("week", "status", "message"), [
    ("garbage", 400, "Not a valid date value."),
    ("2026-02-30", 400, "Not a valid date value."),
    ("2026-11-23T00:00", 400, "Not a valid date value."),
    ("0001-01-01", 422, "Choose a date from"),
    ("9999-12-31", 422, "Choose a date from"),
])
def test_a_bad_week_shows_a_message_on_the_chooser_not_a_500(app, client, clinic, week, status,
                                                            message):
    login(client, clinic.admin)
    page = client.get(f"/admin/?week={week}")
    assert page.status_code == status
    text = page.get_data(as_text=True)
    assert f'id="week-error">{message}' in text and 'aria-invalid="true"' in text
    # The page still shows this week, so the admin can choose again.
    assert "Continuity, week of 23 Nov 2026" in text


def test_the_week_chooser_shows_the_week_on_screen(app, client, clinic):
    login(client, clinic.admin)
    assert b'name="week" type="date" value="2026-11-23"' in client.get("/admin/").data
    # A chosen day stays as typed; the page shows its week.
    page = client.get("/admin/?week=2026-11-26").get_data(as_text=True)
    assert 'value="2026-11-26"' in page and "The week of 23 November 2026" in page


def test_twelve_empty_weeks_show_no_chart(app, client, clinic):
    login(client, clinic.admin)
    page = client.get("/admin/?week=2026-11-23").get_data(as_text=True)
    assert "Nothing to chart yet" in page and "continuity-title" not in page


# --- waitlist offers --------------------------------------------------------------------------
# Offers are counted in the week of their ``created_at``; the minutes a freed slot stayed empty
# run from ``freed_at`` (kept across a decline or expiry) to the accept.


def offers_of(db, week=WEEK, now=START):
    return continuity_panel(db.session, week, LONDON, now=now).offers


def test_offers_are_counted_by_how_they_ended(app, clinic, db):
    monday = datetime(2026, 11, 16, 9, 0, tzinfo=UTC)  # the week before the clock's
    for status in ("declined", "declined", "expired", "withdrawn"):
        make_offer(app, clinic, status, monday, responded=monday + timedelta(minutes=5)
                  if status == "declined" else None)
    # Accepted 30 and 90 minutes after the slot was freed (freed 10 minutes before the offer).
    for minutes in (30, 90):
        make_offer(app, clinic, "accepted", monday, freed=monday - timedelta(minutes=10),
                  responded=monday - timedelta(minutes=10) + timedelta(minutes=minutes))
    # Open at the clock's time: one still alive, one past its expiry that the job has not
    # closed yet (it can no longer be accepted, so it counts as expired).
    now = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
    make_offer(app, clinic, "open", now - timedelta(minutes=10))
    make_offer(app, clinic, "open", now - timedelta(hours=1))
    make_offer(app, clinic, "accepted", monday - timedelta(days=7),
              responded=monday - timedelta(days=7, minutes=-5))  # the week before: not this

    offers = offers_of(db, week=date(2026, 11, 16), now=now)
    assert (offers.made, offers.open, offers.accepted, offers.declined, offers.expired,
            offers.withdrawn) == (8, 1, 2, 2, 2, 1)
    assert offers.accepted_share == 0.25
    assert (offers.median_empty, offers.max_empty) == (60, 90)
    previous = dict(continuity_panel(db.session, date(2026, 11, 16), LONDON,
                                     now=now).offer_weeks)[date(2026, 11, 9)]
    assert (previous.made, previous.accepted, previous.empty_minutes) == (1, 1, [5])


def test_a_week_without_offers_has_no_share_and_no_minutes(app, clinic, db):
    make_offer(app, clinic, "declined", datetime(2026, 11, 10, 9, tzinfo=UTC))
    offers = offers_of(db)
    assert offers.made == 0 and offers.accepted_share is None
    assert offers.median_empty is None and offers.max_empty is None
    # A week with offers but none accepted: a share of 0, still no minutes.
    offers = offers_of(db, week=SENT_WEEK)
    assert (offers.made, offers.accepted_share, offers.median_empty) == (1, 0, None)


def test_the_minutes_empty_run_from_the_first_freeing_across_a_decline(app, db, clock):
    """The real job and answers: Bob cancels, Ada is offered the slot and declines 10
    minutes later, the next round offers it to Eve, who accepts 20 minutes after that. The
    slot was empty from the cancellation to Eve's accept: 30 minutes, not 20."""
    scene = make_scene(app)
    cancelled_at = clock.now()
    first = cancel_and_offer(app, scene)
    assert first.client_id == scene.a.id and first.freed_at == cancelled_at
    clock.advance(timedelta(minutes=10))
    waitlist_offers.decline(db.session, first, client=scene.a, now=clock.now())
    db.session.commit()
    waitlist_offers.run_round(db.session, clock.now())
    db.session.commit()
    second = db.session.scalar(select(WaitlistOffer).where(WaitlistOffer.status == "open"))
    assert second.client_id == scene.e.id
    clock.advance(timedelta(minutes=20))
    waitlist_offers.accept(db.session, second, client=scene.e, now=clock.now())
    db.session.commit()

    offers = offers_of(db, now=clock.now())
    assert (offers.made, offers.declined, offers.accepted, offers.open) == (2, 1, 1, 0)
    assert offers.empty_minutes == [30] and offers.median_empty == offers.max_empty == 30


def test_an_unanswered_offer_expires_through_the_job_and_has_no_minutes(app, db, clock):
    scene = make_scene(app)
    cancel_and_offer(app, scene)
    clock.advance(timedelta(minutes=30))
    waitlist_offers.run_round(db.session, clock.now())  # expires Ada's, offers it to Eve
    db.session.commit()
    offers = offers_of(db, now=clock.now())
    assert (offers.made, offers.expired, offers.open, offers.accepted) == (2, 1, 1, 0)
    assert offers.empty_minutes == [] and offers.median_empty is None


@pytest.mark.parametrize(("week", "inside", "outside"), [
    (date(2026, 3, 23),  # spring forward: 167 hours, 00:00 UTC to Sun 23:00 UTC
     [datetime(2026, 3, 23, 0, 0, tzinfo=UTC), datetime(2026, 3, 29, 22, 59, 59, tzinfo=UTC)],
     [datetime(2026, 3, 22, 23, 59, 59, tzinfo=UTC), datetime(2026, 3, 29, 23, 0, tzinfo=UTC)]),
    (date(2026, 10, 19),  # fall back: 169 hours, Sun 23:00 UTC to Mon 00:00 UTC
     [datetime(2026, 10, 18, 23, 0, tzinfo=UTC), datetime(2026, 10, 25, 23, 59, 59, tzinfo=UTC)],
     [datetime(2026, 10, 18, 22, 59, 59, tzinfo=UTC), datetime(2026, 10, 26, 0, 0, tzinfo=UTC)]),
])
def test_offers_fall_in_the_clinic_zones_weeks_across_the_dst_change(app, clinic, db, week,
                                                                      inside, outside):
    for at in inside + outside:
        make_offer(app, clinic, "accepted", at, freed=at - timedelta(minutes=45), responded=at)
    now = datetime.combine(week + timedelta(days=21), time(12), tzinfo=UTC)
    panel = continuity_panel(db.session, week, LONDON, now=now)
    assert (panel.offers.made, panel.offers.median_empty) == (2, 45)
    assert dict(panel.offer_weeks)[week - timedelta(weeks=1)].made == 1
    after = continuity_panel(db.session, week + timedelta(weeks=1), LONDON, now=now)
    assert after.offers.made == 1


def test_offer_figures_take_one_query_whatever_the_number_of_offers(app, clinic, db):
    def selects() -> int:
        count = [0]

        def counter(conn, cursor, statement, *args):
            count[0] += statement.lstrip().upper().startswith("SELECT")

        event.listen(db.engine, "before_cursor_execute", counter)
        try:
            figures = offer_figures(db.session, WEEK - timedelta(weeks=11), LONDON, now=START)
        finally:
            event.remove(db.engine, "before_cursor_execute", counter)
        return count[0], sum(f.made for f in figures.values())

    at = datetime(2026, 11, 10, 9, tzinfo=UTC)
    make_offer(app, clinic, "accepted", at, responded=at + timedelta(minutes=3))
    assert selects() == (1, 1)
    for i in range(20):
        make_offer(app, clinic, ("accepted", "declined", "expired", "open")[i % 4],
                  at + timedelta(days=i % 10, minutes=i), responded=at + timedelta(days=i % 10,
                                                                                   minutes=i + 4))
    assert selects() == (1, 21)


def test_the_dashboard_shows_the_weeks_offers(app, client, clinic):
    at = datetime(2026, 11, 10, 9, tzinfo=UTC)
    make_offer(app, clinic, "accepted", at, freed=at - timedelta(minutes=5),
              responded=at + timedelta(minutes=40))
    make_offer(app, clinic, "accepted", at, freed=at - timedelta(hours=2),
              responded=at + timedelta(minutes=15))
    make_offer(app, clinic, "declined", at, responded=at + timedelta(minutes=1))
    make_offer(app, clinic, "expired", at)
    login(client, clinic.admin)
    page = client.get("/admin/?week=2026-11-09").get_data(as_text=True)
    assert "Waitlist offers of freed slots" in page
    assert "Offers made</small><strong>4</strong>" in page
    assert "2 of 4 offers" in page and "<strong>50%</strong>" in page
    assert "<strong>1 · 1</strong>" in page  # declined · expired
    # 45 and 135 minutes empty: the median 90 shown as 1 h 30 min, the longest 2 h 15 min.
    assert "<strong>1&nbsp;h 30&nbsp;min</strong><small>median; longest 2&nbsp;h 15&nbsp;min" \
        in page
    assert "Purple dotted line with triangles" in page
    # The table's last row: accepted of made, and the median minutes empty.
    assert ('2 of 4</span> <span class="nowrap">(50%)</span><br>'
            '<small class="muted">1&nbsp;h 30&nbsp;min</small>') in page
    assert "waitlist offers accepted</title>" in page
    # The week after has none.
    page = client.get("/admin/?week=2026-11-16").get_data(as_text=True)
    assert "No offers made this week." in page


def test_the_dashboard_of_a_week_without_offers_says_so(app, client, clinic):
    login(client, clinic.admin)
    page = client.get("/admin/?week=2026-11-23").get_data(as_text=True)
    assert "No offers made this week." in page and "Offers made</small>" not in page
    assert "no offers made in these 12 weeks" in page
