"""The planner and the send-time rules against what was seen going wrong (issue 10): a
red-flag client still prompted and recalled, a stale prompt after a check-in, a check-in
email after the answer, aftercare for an uncompleted booking; and one bad row that stops
the planner for the whole clinic (issue 9 item 7), with job status on the admin page."""

from __future__ import annotations

import re
from datetime import UTC
from datetime import date
from datetime import datetime
from datetime import timedelta

from sqlalchemy import select

from clinic_app.models import OutboxMessage
from clinic_app.models import Recommendation
from clinic_app.models import WorkerJobRun
from clinic_app.services import planner
from clinic_app.worker import plan_due_messages_job
from tests.factories import PASSWORD
from tests.factories import make_user
from tests.factories.care import add_checkin
from tests.factories.care import add_recommendation
from tests.factories.care import complete
from tests.factories.notify import make_booking
from tests.factories.notify import make_clinic
from tests.factories.notify import rows
from tests.factories.notify import run_job

START = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
EARLIEST, IDEAL, LATEST = date(2026, 11, 28), date(2026, 11, 30), date(2026, 12, 3)
SEND = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)


def _visit(app, clinic, clock, *, client=None, start=START):
    booking = make_booking(app, clinic, start, client=client)
    clock.set(booking.end_at + timedelta(minutes=30))
    complete(app, booking)
    return booking


def _deliver(app, mailbox, clock, moment):
    clock.set(moment)
    run_job(plan_due_messages_job, app)
    before = len(mailbox.messages())
    return mailbox.deliver()[before:]


def test_no_prompt_or_recall_once_a_check_in_raised_a_red_flag(app, db, clock, mailbox):
    clinic = make_clinic(app)
    booking = _visit(app, clinic, clock)
    add_recommendation(app, booking, earliest=EARLIEST, ideal=IDEAL, latest=LATEST)
    run_job(plan_due_messages_job, app)  # the prompt is written now, due on the ideal date
    [prompt] = rows("rebooking_prompt")
    assert prompt.status == "pending" and prompt.body_text is None  # an intent
    # The 24 h check-in raises a red flag: the care layer writes a "refer" window.
    clock.set(booking.end_at + timedelta(hours=24))
    add_checkin(app, booking, soreness=3)
    add_recommendation(app, booking, earliest=None, ideal=None, latest=None, action="refer")
    sent = _deliver(app, mailbox, clock, SEND)
    assert "Time to book your next session" not in [m["Subject"] for m in sent]
    db.session.refresh(prompt)
    assert (prompt.status, prompt.last_error) == ("retired", "current recommendation is refer")
    # Eight weeks on: no recall either.
    sent = _deliver(app, mailbox, clock, booking.end_at + timedelta(weeks=8, hours=1))
    assert "We have not seen you for a while" not in [m["Subject"] for m in sent]
    assert rows("recall") == []


def test_awaiting_therapist_review_holds_the_prompt(app, db, clock, mailbox):
    clinic = make_clinic(app)
    booking = _visit(app, clinic, clock)
    add_recommendation(app, booking, earliest=EARLIEST, ideal=IDEAL, latest=LATEST)
    run_job(plan_due_messages_job, app)
    add_recommendation(app, booking, earliest=EARLIEST, ideal=IDEAL, latest=LATEST,
                       action="therapist_review")
    _deliver(app, mailbox, clock, SEND)
    [prompt] = rows("rebooking_prompt")
    assert prompt.last_error == "current recommendation is therapist_review"


def test_prompt_with_a_changed_window_is_superseded_not_sent_stale(app, db, clock, mailbox):
    clinic = make_clinic(app)
    booking = _visit(app, clinic, clock)
    add_recommendation(app, booking, earliest=EARLIEST, ideal=IDEAL, latest=LATEST)
    run_job(plan_due_messages_job, app)
    # The therapist moves the window a day later after the prompt was written.
    add_recommendation(app, booking, earliest=EARLIEST + timedelta(days=1),
                       ideal=IDEAL + timedelta(days=1), latest=LATEST)
    sent = _deliver(app, mailbox, clock, SEND)
    assert [m["Subject"] for m in sent] == []
    first, second = rows("rebooking_prompt")
    assert first.status == "retired"
    assert second.due_at == SEND + timedelta(days=1)
    [mail] = _deliver(app, mailbox, clock, SEND + timedelta(days=1))
    assert "Tuesday 01 December 2026" in mailbox.text(mail)  # the window the pages show


def test_no_check_in_email_once_the_client_checked_in(app, db, clock, mailbox):
    clinic = make_clinic(app)
    booking = _visit(app, clinic, clock)
    clock.set(booking.end_at + timedelta(hours=20))
    add_checkin(app, booking, soreness=2)  # through the API, before the email went
    sent = _deliver(app, mailbox, clock, booking.end_at + timedelta(hours=24))
    assert "How are you feeling after your session?" not in [m["Subject"] for m in sent]
    [row] = rows("checkin_24h")
    assert (row.status, row.last_error) == ("retired", "the 24h check-in is already answered")


def test_aftercare_goes_only_after_completion_and_at_once_when_recorded_late(
        app, db, clock, mailbox):
    clinic = make_clinic(app)
    booking = make_booking(app, clinic, START)
    sent = _deliver(app, mailbox, clock, START + timedelta(hours=5))
    assert "After your session" not in " ".join(m["Subject"] for m in sent)  # not completed
    complete(app, booking)  # recorded 4 h after the end
    [row] = rows("aftercare")
    assert row.due_at == clock.now()  # later than end + 3 h: at once
    sent = _deliver(app, mailbox, clock, clock.now())
    assert "After your session: looking after yourself" in [m["Subject"] for m in sent]


def test_one_bad_client_is_skipped_and_everyone_else_is_planned(app, db, clock, monkeypatch):
    clinic = make_clinic(app)
    other = make_user(app, email="other@example.com", name="Olu Other")
    first = _visit(app, clinic, clock)
    second = _visit(app, clinic, clock, client=other, start=START + timedelta(hours=2))
    for booking in (first, second):
        add_recommendation(app, booking, earliest=EARLIEST, ideal=IDEAL, latest=LATEST)
    real_intent = planner.intent
    bad_client = first.client_id  # read now: the job runs on its own connection

    def failing_for_the_first_client(session, **kwargs):
        if kwargs.get("booking") is not None and kwargs["booking"].client_id == bad_client:
            raise ValueError("year 10000 is out of range")
        return real_intent(session, **kwargs)

    monkeypatch.setattr(planner, "intent", failing_for_the_first_client)
    result = run_job(plan_due_messages_job, app)
    assert result.prompts == 1 and len(result.failures) == 1
    assert [r.user_id for r in rows("rebooking_prompt")] == [other.id]
    status = db.session.get(WorkerJobRun, "plan_due_messages")
    assert status.failures == 1 and f"client {bad_client}" in status.last_error
    assert "year 10000 is out of range" in status.last_error
    # The next run without the fault plans the skipped client too, and says it is well.
    monkeypatch.setattr(planner, "intent", real_intent)
    assert run_job(plan_due_messages_job, app).prompts == 1
    db.session.expire_all()
    status = db.session.get(WorkerJobRun, "plan_due_messages")
    assert status.failures == 0 and status.last_ok_at == clock.now()
    assert "year 10000" in status.last_error  # the last error stays visible with its time


def test_an_override_dated_9999_12_31_does_not_stop_the_planner(app, db, clock, mailbox):
    clinic = make_clinic(app)
    other = make_user(app, email="other@example.com", name="Olu Other")
    first = _visit(app, clinic, clock)
    second = _visit(app, clinic, clock, client=other, start=START + timedelta(hours=2))
    add_recommendation(app, second, earliest=EARLIEST, ideal=IDEAL, latest=LATEST)
    far = date(9999, 12, 31)
    db.session.add(Recommendation(client_id=first.client_id, booking_id=first.id,
                                  created_at=clock.now(), earliest=far, ideal=far, latest=far,
                                  action="book", reasons=[], source="override",
                                  override_reason="typo", author_id=clinic.therapist.user_id))
    db.session.commit()
    result = run_job(plan_due_messages_job, app)
    assert result.failures == []
    assert {r.user_id for r in rows("rebooking_prompt")} >= {other.id}
    sent = _deliver(app, mailbox, clock, SEND)
    assert [str(m["To"]) for m in sent if m["Subject"] == "Time to book your next session"] == [
        "other@example.com"]
    assert db.session.get(WorkerJobRun, "plan_due_messages").failures == 0


def _login(client, email):
    response = client.post("/login", data={"email": email, "password": PASSWORD})
    assert response.status_code == 302


def test_admin_outbox_page_shows_job_status_and_retired_reasons(app, db, clock, client,
                                                                 mailbox, monkeypatch):
    clinic = make_clinic(app)
    booking = _visit(app, clinic, clock)
    add_recommendation(app, booking, earliest=EARLIEST, ideal=IDEAL, latest=LATEST)
    monkeypatch.setattr(planner, "intent", lambda session, **kw: 1 / 0)
    run_job(plan_due_messages_job, app)
    add_checkin(app, booking, soreness=1)
    monkeypatch.undo()
    clock.set(booking.end_at + timedelta(hours=25))
    mailbox.deliver()
    make_user(app, role="admin", email="admin@example.com")
    _login(client, "admin@example.com")
    page = client.get("/admin/outbox/").get_data(as_text=True)
    assert "Worker jobs" in page and "plan_due_messages" in page
    assert re.search(r"ZeroDivisionError: division by zero", page)
    assert "dispatch_outbox" in page
    assert "Not sent: retired at send time" in page
    assert "the 24h check-in is already answered" in page
    outsider = make_user(app, role="client", email="nosy@example.com")
    client.post("/logout")
    _login(client, outsider.email)
    assert client.get("/admin/outbox/").status_code in (403, 404)
    assert db.session.scalar(select(OutboxMessage.id).limit(1)) is not None


def test_no_template_is_rendered_inside_a_booking_request(app, db, clock, mailbox,
                                                          monkeypatch):
    """Booking, moving, cancelling and completing write intents only; the worker renders."""
    from clinic_app.mail import render as render_module  # patched for this test only

    clinic = make_clinic(app)
    real_render = render_module._render

    def no_rendering(*args, **kwargs):
        raise AssertionError("a template was rendered in the causing transaction")

    monkeypatch.setattr(render_module, "_render", no_rendering)
    booking = make_booking(app, clinic, START)
    clock.set(booking.end_at + timedelta(minutes=5))
    complete(app, booking)
    written = rows()
    assert {r.kind for r in written} == {"booking_confirmation", "reminder", "aftercare",
                                         "checkin_24h"}
    assert all(r.subject is None and r.body_text is None and r.params is not None
               for r in written)
    monkeypatch.setattr(render_module, "_render", real_render)
    clock.set(booking.end_at + timedelta(hours=3))
    sent = mailbox.deliver()
    assert "After your session: looking after yourself" in [m["Subject"] for m in sent]
    db.session.expire_all()
    aftercare = rows("aftercare")[0]
    assert aftercare.status == "sent" and aftercare.subject.startswith("After your session")


def test_a_failing_job_is_recorded_and_still_raises(app, db, clock, monkeypatch):
    def broken(session, now):
        raise RuntimeError("database went away")

    monkeypatch.setattr(planner, "plan_due_messages", broken)
    try:
        run_job(plan_due_messages_job, app)
    except RuntimeError as exc:
        assert str(exc) == "database went away"
    else:
        raise AssertionError("the job's failure must reach the scheduler's log")
    status = db.session.get(WorkerJobRun, "plan_due_messages")
    assert status.last_error == "RuntimeError: database went away"
    assert status.last_error_at == clock.now() and status.last_ok_at is None
