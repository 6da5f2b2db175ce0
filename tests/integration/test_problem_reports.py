"""Reporting a problem after a session (issue 12 item 4): the API, the page, the emails.

A report acts like a red-flag check-in (the therapist is alerted, the recommendation
becomes ``refer``, booking is paused) at any time in the 14 days after the session, as often
as needed; before the session or later than that it is a 409.
"""

from __future__ import annotations

import re
from datetime import UTC
from datetime import datetime
from datetime import timedelta

import pytest
from sqlalchemy import select

from clinic_app.errors import Conflict
from clinic_app.errors import ValidationFailed
from clinic_app.models import OutboxMessage
from clinic_app.models import ProblemReport
from clinic_app.services import booking_links
from clinic_app.services import care
from clinic_app.services import privacy
from clinic_app.worker import plan_due_messages_job
from tests.conftest import path_of
from tests.factories.accounts import PASSWORD
from tests.factories.accounts import login
from tests.factories.accounts import make_user
from tests.factories.accounts import token_for
from tests.factories.booking import make_booking
from tests.factories.booking import make_clinic
from tests.factories.care import recorded_session
from tests.factories.notify import run_job

MON = datetime(2026, 11, 23, 13, 0, tzinfo=UTC)  # London is on GMT: local = UTC
FLAGS = ["new_numbness_weakness", "fever"]


@pytest.fixture
def clinic(app):
    return make_clinic(app)


@pytest.fixture
def session_done(app, clinic, clock):
    """A recorded session on Monday; the clock three days later."""
    booking, _ = recorded_session(app, clinic, MON, intensity=5)
    clock.set(booking.end_at + timedelta(days=3))
    return booking


def report(client, app, booking_id, *, who, **body):
    """``who`` reports a problem about the booking through the API."""
    return client.post(f"/api/v1/bookings/{booking_id}/report", headers=token_for(app, who),
                       json=body)


def book_next(client, app, clinic, start):
    return client.post("/api/v1/bookings", headers=token_for(app, clinic.client), json={
        "service_id": clinic.service.id, "therapist_id": clinic.t1.id,
        "start": start.isoformat(), "early_confirmed": True})


# --- the API ---------------------------------------------------------------------------------


def test_report_alerts_refers_and_pauses_booking(app, db, client, clinic, session_done,
                                                 mailbox):
    assert book_next(client, app, clinic, MON + timedelta(days=9)).status_code == 201
    done = report(client, app, session_done.id, who=clinic.client,
                  red_flags=["fever", "new_numbness_weakness"])
    assert done.status_code == 201, done.json
    body = done.json
    # Stored in the checklist's order, as a check-in's flags are.
    assert body["red_flags"] == FLAGS and body["booking_id"] == session_done.id
    assert "doctor" in body["seek_care"]
    assert body["follow_up"]["action"] == "refer"
    assert body["follow_up"]["earliest"] is None
    assert care.current_recommendation(db.session, clinic.client.id).action == "refer"
    row = db.session.get(ProblemReport, body["id"])
    assert row.red_flags == FLAGS and row.submitted_at == session_done.end_at + timedelta(days=3)
    alert = db.session.scalar(select(OutboxMessage).where(
        OutboxMessage.kind == "red_flag_alert"))
    assert alert.key == f"booking:{session_done.id}:problem-report:{row.id}"
    assert alert.to_addr == clinic.t1.user.email
    # Paused exactly as after a red-flag check-in: nothing can be booked.
    blocked = book_next(client, app, clinic, MON + timedelta(days=10))
    assert blocked.status_code == 422
    assert blocked.json["error"]["code"] == "see_clinician_first"
    mail = mailbox.messages(clinic.t1.user.email) or mailbox.deliver()
    alerts = [m for m in mailbox.messages(clinic.t1.user.email)
              if m["Subject"] == "A client needs your attention"]
    assert len(alerts) == 1, mail
    text = mailbox.text(alerts[0])
    assert "reported a problem after their session on Monday 23 November 2026" in text
    assert "ticked 2 warning signs" in text
    assert "Fever" not in text and "umbness" not in text  # no symptoms in email
    # The therapist's review queue shows it (behind the login).
    items = care.review_queue(db.session, clinic.t1.user, session_done.end_at + timedelta(days=3))
    flagged = [i for i in items if i.kind == "red_flag"]
    assert flagged and flagged[0].booking.id == session_done.id
    assert "Reported a problem" in flagged[0].labels and "Fever" in flagged[0].labels
    # ... and the client's timeline lists the reported signs with the session.
    timeline = care.client_timeline(db.session, clinic.client, clinic.t1.user,
                                    session_done.end_at + timedelta(days=3))
    assert timeline.sessions[0]["red_flags"] == ["New numbness, tingling or weakness", "Fever"]


def test_each_report_alerts_again_with_its_own_key(app, db, client, clinic, session_done,
                                                   clock):
    first = report(client, app, session_done.id, who=clinic.client, red_flags=["fever"])
    clock.set(clock.now() + timedelta(days=2))
    second = report(client, app, session_done.id, who=clinic.client,
                    red_flags=["calf_pain_swelling"])
    assert first.status_code == second.status_code == 201
    keys = db.session.scalars(select(OutboxMessage.key).where(
        OutboxMessage.kind == "red_flag_alert").order_by(OutboxMessage.id)).all()
    assert keys == [f"booking:{session_done.id}:problem-report:{first.json['id']}",
                    f"booking:{session_done.id}:problem-report:{second.json['id']}"]
    # The recommender sees every report's flags.
    reasons = {r["code"] for r in second.json["follow_up"]["reasons"]}
    assert {"red_flag:fever", "red_flag:calf_pain_swelling"} <= reasons


def test_report_also_after_a_check_in_and_on_an_unrecorded_session(app, db, client, clinic,
                                                                    clock):
    # A session that took place but was not yet marked completed: reportable (as a check-in
    # is); there is no recommendation to change until the therapist records it.
    booking = make_booking(app, clinic, MON)
    clock.set(booking.end_at + timedelta(hours=1))
    done = report(client, app, booking.id, who=clinic.client, red_flags=["fever"])
    assert done.status_code == 201
    assert done.json["follow_up"]["action"] is None
    assert care.current_recommendation(db.session, clinic.client.id) is None
    assert db.session.scalar(select(OutboxMessage.key).where(
        OutboxMessage.kind == "red_flag_alert")).endswith(f":problem-report:{done.json['id']}")


def test_409_before_the_session_and_after_14_days(app, db, client, clinic, clock):
    upcoming = make_booking(app, clinic, clock.now() + timedelta(days=1))
    early = report(client, app, upcoming.id, who=clinic.client, red_flags=["fever"])
    assert early.status_code == 409 and early.json["error"]["code"] == "not_started"
    booking, _ = recorded_session(app, clinic, MON)
    clock.set(booking.end_at + timedelta(days=14))
    last_moment = report(client, app, booking.id, who=clinic.client, red_flags=["fever"])
    assert last_moment.status_code == 201
    clock.set(booking.end_at + timedelta(days=14, seconds=1))
    late = report(client, app, booking.id, who=clinic.client, red_flags=["fever"])
    assert late.status_code == 409 and late.json["error"]["code"] == "report_window_closed"
    assert db.session.scalar(select(ProblemReport).where(
        ProblemReport.submitted_at > booking.end_at + timedelta(days=14))) is None


def test_409_for_a_cancelled_booking(app, db, client, clinic, clock):
    cancelled = make_booking(app, clinic, MON, status="cancelled")
    clock.set(MON + timedelta(days=1))
    answer = report(client, app, cancelled.id, who=clinic.client, red_flags=["fever"])
    assert answer.status_code == 409 and answer.json["error"]["code"] == "not_reportable"
    assert db.session.scalar(select(ProblemReport)) is None


@pytest.mark.parametrize(("body", "field"), [
    ({"red_flags": []}, "red_flags"), ({"red_flags": ["made_up"]}, "red_flags"),
    ({"red_flags": ["fever", "made_up"]}, "red_flags"), ({}, "red_flags"),
    ({"red_flags": "fever"}, "red_flags"), ({"red_flags": [3]}, "red_flags.0"),
    ({"red_flags": ["fever"], "extra": 1}, "extra"),
])
def test_422_for_empty_unknown_or_malformed_flags(app, db, client, session_done, body, field):
    answer = client.post(f"/api/v1/bookings/{session_done.id}/report",
                         headers=token_for(app, session_done.client), json=body)
    assert answer.status_code == 422, answer.json
    assert answer.json["error"]["code"] == "validation_failed"
    assert field in answer.json["error"]["fields"]
    assert db.session.scalar(select(ProblemReport)) is None
    assert db.session.scalar(select(OutboxMessage).where(
        OutboxMessage.kind == "red_flag_alert")) is None


def test_404_for_another_clients_booking_and_401_without_a_token(app, db, client, clinic,
                                                                 session_done):
    other = make_user(app)
    answer = report(client, app, session_done.id, who=other,
                    red_flags=["fever"])
    assert answer.status_code == 404
    assert report(client, app, 999999, who=clinic.client, red_flags=["fever"]).status_code == 404
    anonymous = client.post(f"/api/v1/bookings/{session_done.id}/report",
                            json={"red_flags": ["fever"]})
    assert anonymous.status_code == 401
    assert db.session.scalar(select(ProblemReport)) is None


def test_staff_cannot_report_for_the_client(app, db, client, clinic, session_done):
    answer = report(client, app, session_done.id, who=clinic.t1.user,
                    red_flags=["fever"])
    assert answer.status_code in (403, 404)
    assert db.session.scalar(select(ProblemReport)) is None


def test_openapi_documents_the_report_endpoint(client):
    document = client.get("/api/v1/openapi.json").get_json()
    operation = document["paths"]["/api/v1/bookings/{booking_id}/report"]["post"]
    assert set(operation["responses"]) >= {"201", "401", "404", "409", "422"}
    request_ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    response_ref = operation["responses"]["201"]["content"]["application/json"]["schema"]["$ref"]
    schemas = document["components"]["schemas"]
    request_schema = schemas[request_ref.rsplit("/", 1)[-1]]
    assert request_schema["required"] == ["red_flags"]
    assert set(schemas[response_ref.rsplit("/", 1)[-1]]["properties"]) >= {
        "id", "booking_id", "red_flags", "submitted_at", "seek_care", "follow_up"}


# --- the service -----------------------------------------------------------------------------


def test_service_errors_name_their_field(app, db, session_done, clock):
    with pytest.raises(ValidationFailed) as empty:
        care.report_problem(db.session, session_done, red_flags=[], now=clock.now())
    assert "red_flags" in empty.value.fields
    with pytest.raises(Conflict):
        care.report_problem(db.session, session_done, red_flags=["fever"],
                            now=session_done.start_at - timedelta(minutes=1))
    assert care.report_window_open(session_done, clock.now())
    assert not care.report_window_open(session_done, session_done.start_at - timedelta(seconds=1))
    assert not care.report_window_open(session_done, session_done.end_at + timedelta(days=15))


def test_reports_are_exported_and_purged_with_the_health_data(app, db, session_done, clock):
    care.report_problem(db.session, session_done, red_flags=["fever"], now=clock.now())
    db.session.commit()
    data = privacy.export_client_data(db.session, session_done.client, clock.now())
    assert data["problem_reports"] == [{
        "booking_id": session_done.id, "red_flags": ["fever"],
        "submitted_at": clock.now().isoformat()}]
    client_user = session_done.client
    privacy.close_account(db.session, client_user, PASSWORD, clock.now())
    db.session.commit()
    later = clock.now() + timedelta(days=365 * 9)
    assert privacy.purge_expired_health_records(db.session, later) >= 1
    db.session.commit()
    assert db.session.scalar(select(ProblemReport)) is None


# --- the page --------------------------------------------------------------------------------


def test_appointment_page_offers_the_report_within_14_days(app, db, client, clinic,
                                                           session_done, clock):
    login(client, clinic.client)
    page = client.get(f"/appointments/{session_done.id}").get_data(as_text=True)
    assert f"/appointments/{session_done.id}/report" in page and "Report a problem" in page
    clock.set(session_done.end_at + timedelta(days=14, minutes=1))
    page = client.get(f"/appointments/{session_done.id}").get_data(as_text=True)
    assert f"/appointments/{session_done.id}/report" not in page
    upcoming = make_booking(app, clinic, clock.now() + timedelta(days=2))
    page = client.get(f"/appointments/{upcoming.id}").get_data(as_text=True)
    assert f"/appointments/{upcoming.id}/report" not in page


def test_report_page_shows_the_checklist_then_the_advice(app, db, client, clinic,
                                                         session_done):
    login(client, clinic.client)
    path = f"/appointments/{session_done.id}/report"
    form = client.get(path)
    assert form.status_code == 200
    text = form.get_data(as_text=True)
    for code, label in care.followup_rules.RED_FLAGS.items():
        assert f'value="{code}"' in text
        assert label.split(",")[0] in text
    empty = client.post(path, data={})
    assert empty.status_code == 422
    assert "Tick at least one of the warning signs" in empty.get_data(as_text=True)
    bogus = client.post(path, data={"red_flags": ["made_up"]})
    assert bogus.status_code == 422
    done = client.post(path, data={"red_flags": ["calf_pain_swelling"]})
    assert done.status_code == 200
    text = done.get_data(as_text=True)
    # The same advice page a red-flag check-in shows.
    assert "Please seek medical advice" in text and care.SEEK_CARE_TEXT.split(".")[0] in text
    assert "Calf pain, swelling or warmth in one leg" in text
    assert care.current_recommendation(db.session, clinic.client.id).action == "refer"
    assert db.session.scalar(select(OutboxMessage.key).where(
        OutboxMessage.kind == "red_flag_alert")).startswith(
        f"booking:{session_done.id}:problem-report:")


def test_report_page_outside_the_window(app, db, client, clinic, session_done, clock):
    login(client, clinic.client)
    path = f"/appointments/{session_done.id}/report"
    clock.set(session_done.end_at + timedelta(days=15))
    closed = client.get(path)
    assert closed.status_code == 200
    text = closed.get_data(as_text=True)
    assert "for 14 days after a session" in text and "Send the report" not in text
    late = client.post(path, data={"red_flags": ["fever"]})
    assert late.status_code == 409 and "more than 14 days ago" in late.get_data(as_text=True)
    upcoming = make_booking(app, clinic, clock.now() + timedelta(days=2))
    early = client.get(f"/appointments/{upcoming.id}/report")
    assert early.status_code == 200 and "has not taken place yet" in early.get_data(as_text=True)
    assert db.session.scalar(select(ProblemReport)) is None


def test_report_page_is_the_clients_own(app, db, client, clinic, session_done):
    path = f"/appointments/{session_done.id}/report"
    anonymous = client.get(path)
    assert anonymous.status_code == 302 and "/login" in anonymous.headers["Location"]
    # The email's link survives the log-in: the client lands on the report form.
    logged_in = client.post(anonymous.headers["Location"],
                            data={"email": clinic.client.email, "password": PASSWORD})
    assert logged_in.status_code == 302 and logged_in.headers["Location"].endswith(path)
    client.post("/logout")
    login(client, make_user(app))
    assert client.get(path).status_code == 404
    assert client.post(path, data={"red_flags": ["fever"]}).status_code == 404
    login(client, clinic.t1.user)
    assert client.get(path).status_code in (403, 404)
    assert db.session.scalar(select(ProblemReport)) is None


# --- the post-session emails -------------------------------------------------------------------


def _report_links(app, clinic, mailbox, clock):
    """A recorded Monday session, the clock 25 h after it, and the "report a problem" link of
    each post-session email (aftercare, 24 h check-in)."""
    booking, _ = recorded_session(app, clinic, MON)
    clock.set(booking.end_at + timedelta(hours=25))
    run_job(plan_due_messages_job, app)
    mailbox.deliver()
    mine = mailbox.messages(clinic.client.email)
    found = {}
    for subject in ("After your session: looking after yourself",
                    "How are you feeling after your session?"):
        message = next(m for m in mine if m["Subject"] == subject)
        text = mailbox.text(message)
        (link,) = re.findall(r"https?://\S+/report(?=\s)", text)
        html = message.get_body(preferencelist=("html",)).get_content()
        assert path_of(link) in html and "Report a problem" in html
        found[subject] = path_of(link)
    return booking, found


def test_post_session_emails_carry_a_signed_report_link(app, db, client, clinic, mailbox,
                                                        clock):
    booking, links = _report_links(app, clinic, mailbox, clock)
    for path in links.values():
        # Signed, not the logged-in page: no booking id in the address, no log-in needed.
        assert path.startswith("/b/") and f"/appointments/{booking.id}" not in path
        page = client.get(path)
        assert page.status_code == 200, path
        text = page.get_data(as_text=True)
        assert "Report a problem" in text and 'value="fever"' in text
        assert "Send the report" in text


def test_report_through_the_link_acts_like_a_red_flag_check_in(app, db, client, clinic,
                                                               mailbox, clock):
    booking, links = _report_links(app, clinic, mailbox, clock)
    path = links["After your session: looking after yourself"]
    empty = client.post(path, data={})
    assert empty.status_code == 422
    assert "Tick at least one of the warning signs" in empty.get_data(as_text=True)
    done = client.post(path, data={"red_flags": ["calf_pain_swelling", "fever"]})
    assert done.status_code == 200
    text = done.get_data(as_text=True)
    assert "Please seek medical advice" in text and care.SEEK_CARE_TEXT.split(".")[0] in text
    row = db.session.scalar(select(ProblemReport))
    assert row.booking_id == booking.id and row.red_flags == ["calf_pain_swelling", "fever"]
    alert = db.session.scalar(select(OutboxMessage).where(
        OutboxMessage.kind == "red_flag_alert"))
    assert alert.key == f"booking:{booking.id}:problem-report:{row.id}"
    assert alert.to_addr == clinic.t1.user.email
    assert care.current_recommendation(db.session, clinic.client.id).action == "refer"
    blocked = book_next(client, app, clinic, MON + timedelta(days=10))
    assert blocked.status_code == 422
    assert blocked.json["error"]["code"] == "see_clinician_first"


def test_the_report_link_after_14_days_says_so(app, db, client, clinic, mailbox, clock):
    booking, links = _report_links(app, clinic, mailbox, clock)
    path = links["How are you feeling after your session?"]
    clock.set(booking.end_at + timedelta(days=14, seconds=1))
    closed = client.get(path)
    assert closed.status_code == 200
    text = closed.get_data(as_text=True)
    assert "for 14 days after a session" in text and "NHS 111" in text
    assert "Send the report" not in text
    late = client.post(path, data={"red_flags": ["fever"]})
    assert late.status_code == 409 and "more than 14 days ago" in late.get_data(as_text=True)
    assert db.session.scalar(select(ProblemReport)) is None


def test_a_report_link_for_a_session_not_completed_is_dead(app, db, client, clinic, clock):
    # Only completed sessions get post-session emails; a report token for any other booking
    # (one that took place but was never completed, a cancelled one) opens nothing.
    secret = app.config["SECRET_KEY"]
    unrecorded = make_booking(app, clinic, MON)
    cancelled = make_booking(app, clinic, MON + timedelta(days=1), status="cancelled")
    clock.set(MON + timedelta(days=2))
    for b in (unrecorded, cancelled):
        path = f"/b/{booking_links.make_token(secret, b, 'report')}/report"
        dead = client.get(path)
        text = dead.get_data(as_text=True)
        assert dead.status_code == 410 and "This link does not work" in text
        assert "NHS 111" in text  # whoever follows it may be unwell: where to get help
        assert client.post(path, data={"red_flags": ["fever"]}).status_code == 410
    assert db.session.scalar(select(ProblemReport)) is None


def test_forged_and_wrong_purpose_report_links_are_dead(app, db, client, clinic, mailbox,
                                                        clock):
    booking, links = _report_links(app, clinic, mailbox, clock)
    token = links["After your session: looking after yourself"].removeprefix(
        "/b/").removesuffix("/report")
    secret = app.config["SECRET_KEY"]
    for path in (f"/b/{token[:-4]}abcd/report", "/b/not-a-token/report",
                 f"/b/{booking_links.make_token('another-secret-key', booking, 'report')}/report",
                 f"/b/{booking_links.make_token(secret, booking, 'view')}/report"):
        assert client.get(path).status_code == 410, path
        assert client.post(path, data={"red_flags": ["fever"]}).status_code == 410, path
    # ... and a report token is no view link.
    assert client.get(f"/b/{token}").status_code == 410
    assert db.session.scalar(select(ProblemReport)) is None
