"""The check-in page: signed link without login, the 24 h and 72 h forms, red flags,
expired/tampered/wrong-purpose links, a second submission."""

from __future__ import annotations

from datetime import UTC
from datetime import datetime
from datetime import timedelta

import pytest
from itsdangerous import URLSafeTimedSerializer
from sqlalchemy import select

from clinic_app.errors import BadRequest
from clinic_app.models import CheckIn
from clinic_app.models import OutboxMessage
from clinic_app.services import care
from tests.factories.booking import make_clinic
from tests.factories.care import checkin_path
from tests.factories.care import recorded_session

MON = datetime(2026, 11, 23, 13, 0, tzinfo=UTC)


@pytest.fixture
def clinic(app):
    return make_clinic(app)


@pytest.fixture
def session_done(app, clinic, clock):
    booking, _ = recorded_session(app, clinic, MON, intensity=6)
    clock.set(booking.end_at + timedelta(hours=24))
    return booking


def test_24h_check_in_shows_the_window(app, db, client, session_done):
    path = checkin_path(app, session_done)
    page = client.get(path)
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "How sore are you today?" in text
    for label in care.followup_rules.RED_FLAGS.values():
        assert label.replace(",", "") in text.replace(",", "") or label in text
    assert "still sore" not in text.lower()
    missing = client.post(path, data={"progress": "same"})
    assert missing.status_code == 422 and "Choose a number from 0 to 10" in missing.get_data(
        as_text=True)
    done = client.post(path, data={"soreness": "4", "progress": "better"})
    assert done.status_code == 200
    text = done.get_data(as_text=True)
    # Deep work, soreness 4: earliest +3 (Thu 26), ideal +4 (Fri 27), latest Tue 1 Dec.
    assert "Thank you" in text and "Thursday 26 November" in text
    assert "Tuesday 01 December" in text
    row = db.session.scalar(select(CheckIn))
    assert (row.kind, row.soreness, row.progress, row.red_flags) == ("24h", 4, "better", [])
    again = client.post(path, data={"soreness": "2"})
    assert again.status_code == 409 and "already have your answers" in again.get_data(
        as_text=True)
    assert client.get(path).status_code == 200
    assert db.session.scalar(select(CheckIn).where(CheckIn.soreness == 2)) is None


def test_red_flag_shows_seek_care_and_alerts(app, db, client, session_done, mailbox):
    path = checkin_path(app, session_done)
    done = client.post(path, data={"soreness": "3",
                                   "red_flags": ["breathless_chest_pain", "fever"]})
    assert done.status_code == 200
    text = done.get_data(as_text=True)
    assert "Please seek medical advice" in text and "999" in text
    assert "Sudden breathlessness or chest pain" in text
    alert = db.session.scalar(select(OutboxMessage).where(
        OutboxMessage.kind == "red_flag_alert"))
    assert alert.key == f"booking:{session_done.id}:red-flag:24h"
    assert care.current_recommendation(db.session, session_done.client_id).action == "refer"
    bogus = client.post(checkin_path(app, session_done, "72h"),
                        data={"still_sore": "no", "red_flags": ["made_up"]})
    assert bogus.status_code == 422


def test_72h_variant_asks_still_sore(app, db, client, clock, session_done):
    clock.set(session_done.end_at + timedelta(hours=72))
    path = checkin_path(app, session_done, "72h")
    page = client.get(path)
    assert page.status_code == 200 and "Are you still sore" in page.get_data(as_text=True)
    assert client.post(path, data={}).status_code == 422
    done = client.post(path, data={"still_sore": "yes"})
    assert done.status_code == 200, done.get_data(as_text=True)
    assert "Your therapist will look at your answers" in done.get_data(as_text=True)
    row = db.session.scalar(select(CheckIn).where(CheckIn.kind == "72h"))
    assert row.still_sore is True and row.soreness is None


def test_links_expire_and_cannot_be_forged(app, db, client, clock, session_done):
    path = checkin_path(app, session_done)
    # The link is stamped with the check-in's due time and works for 7 days after it.
    clock.set(session_done.end_at + timedelta(hours=24) + timedelta(days=7, minutes=1))
    expired = client.get(path)
    assert expired.status_code == 400 and "expired" in expired.get_data(as_text=True)
    clock.set(session_done.end_at + timedelta(hours=30))
    tampered = path[:-3] + ("AAA" if not path.endswith("AAA") else "BBB")
    assert client.get(tampered).status_code == 400
    assert client.post(tampered, data={"soreness": "1"}).status_code == 400
    assert client.get("/check-in/not-a-token").status_code == 400
    secret = app.config["SECRET_KEY"]
    # Same secret, another purpose (salt): refused.
    other = URLSafeTimedSerializer(secret, salt="clinic.other").dumps(
        {"b": session_done.id, "k": "24h"})
    assert client.get(f"/check-in/{other}").status_code == 400
    # Right purpose, unknown kind or booking: refused.
    wrong_kind = URLSafeTimedSerializer(secret, salt=care.CHECKIN_LINK_SALT).dumps(
        {"b": session_done.id, "k": "weekly"})
    assert client.get(f"/check-in/{wrong_kind}").status_code == 400
    ghost = URLSafeTimedSerializer(secret, salt=care.CHECKIN_LINK_SALT).dumps(
        {"b": 999999, "k": "24h"})
    assert client.get(f"/check-in/{ghost}").status_code == 400
    # The token names its kind: the 24 h link never answers the 72 h check-in.
    booking, kind = care.booking_for_checkin_token(db.session, path.rsplit("/", 1)[1],
                                                   clock.now())
    assert (booking.id, kind) == (session_done.id, "24h")
    with pytest.raises(BadRequest) as caught:
        care.booking_for_checkin_token(db.session, other, clock.now())
    assert caught.value.code == "invalid_link"
    with pytest.raises(ValueError):
        care.checkin_token(session_done, "weekly")


def test_page_form_has_csrf(app, db, client, session_done):
    app.config["WTF_CSRF_ENABLED"] = True
    path = checkin_path(app, session_done)
    page = client.get(path).get_data(as_text=True)
    assert 'name="csrf_token"' in page
    refused = client.post(path, data={"soreness": "2"})
    assert refused.status_code == 400
    assert db.session.scalar(select(CheckIn)) is None


def test_cancelled_booking_link_is_invalid(app, db, client, clinic, clock, session_done):
    session_done.status = "cancelled"
    db.session.commit()
    assert client.get(checkin_path(app, session_done)).status_code == 400


def test_the_link_after_submission_shows_only_thank_you(app, db, client, session_done):
    """Issue 9 item 12: whoever holds the link later sees no answers and no red flags."""
    path = checkin_path(app, session_done)
    done = client.post(path, data={"soreness": "7",
                                   "red_flags": ["breathless_chest_pain", "fever"]})
    assert done.status_code == 200 and "Sudden breathlessness" in done.get_data(as_text=True)
    for again in (client.get(path), client.post(path, data={"soreness": "1"})):
        text = again.get_data(as_text=True)
        assert "We already have your answers" in text and "Thank you" in text
        for leak in ("Sudden breathlessness", "Fever", "You reported", "seek medical advice",
                     "Your next session", "Do not book another massage"):
            assert leak not in text, leak
    # A check-in without red flags: no window either on a later visit.
    later = checkin_path(app, session_done, "72h")
    app.extensions["clock"].set(session_done.end_at + timedelta(hours=72))
    client.post(later, data={"still_sore": "no"})
    text = client.get(later).get_data(as_text=True)
    assert "We already have your answers" in text and "Your next session" not in text
