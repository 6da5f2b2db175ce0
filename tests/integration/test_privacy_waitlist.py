"""The client's data export lists their waitlist entries and offers (and nobody else's);
closing an account ends their entries and withdraws an open offer at once, its hold released
so the slot is bookable by someone else (the scene of ``tests/factories/waitlist.py``)."""

from __future__ import annotations

import json
from datetime import date
from datetime import timedelta

import pytest
from sqlalchemy import select

from clinic_app.errors import SlotTaken
from clinic_app.errors import ValidationFailed
from clinic_app.models import Booking
from clinic_app.models import FreedTime
from clinic_app.models import OutboxMessage
from clinic_app.models import WaitlistEntry
from clinic_app.models import WaitlistOffer
from clinic_app.services import booking as booking_service
from clinic_app.services import privacy
from clinic_app.services import waitlist
from clinic_app.services import waitlist_offers as offers
from tests.factories import PASSWORD
from tests.factories.accounts import login
from tests.factories.accounts import token_for
from tests.factories.waitlist import TUE_10
from tests.factories.waitlist import cancel_and_offer
from tests.factories.waitlist import join
from tests.factories.waitlist import make_scene


@pytest.fixture
def scene(app):
    return make_scene(app)


@pytest.fixture
def offer(app, scene):
    return cancel_and_offer(app, scene)


def _export(client, user) -> dict:
    login(client, user)
    response = client.get("/account/export")
    assert response.status_code == 200
    return json.loads(response.get_data(as_text=True))


# --- export -----------------------------------------------------------------------------------


def test_export_lists_own_waitlist_entries_and_offers(app, client, db, scene, offer, clock):
    t1 = scene.clinic.t1
    second = join(app, scene.clinic, scene.a, date_from=date(2026, 11, 25),
                  date_to=date(2026, 11, 26), therapist_id=t1.id,
                  parts_of_day=["evening", "morning"])
    waitlist.leave(db.session, second, clock.now())
    db.session.commit()
    first = db.session.scalars(select(WaitlistEntry).where(
        WaitlistEntry.client_id == scene.a.id).order_by(WaitlistEntry.id)).first()

    data = _export(client, scene.a)
    assert [e["id"] for e in data["waitlist_entries"]] == [first.id, second.id]
    assert data["waitlist_entries"][0] == {
        "id": first.id, "service": scene.clinic.service.name, "therapist": None,
        "date_from": "2026-11-24", "date_to": "2026-11-27", "parts_of_day": [],
        "status": "waiting", "created_at": first.created_at.isoformat(),
        "updated_at": first.updated_at.isoformat(),
    }
    left = data["waitlist_entries"][1]
    assert left["therapist"] == t1.user.name and left["status"] == "left"
    assert left["parts_of_day"] == ["morning", "evening"]  # the day's order
    assert left["updated_at"] == clock.now().isoformat()
    [made] = data["waitlist_offers"]
    assert made == {
        "id": offer.id, "entry_id": first.id, "service": scene.clinic.service.name,
        "therapist": t1.user.name, "start": TUE_10.isoformat(),
        "end": (TUE_10 + timedelta(minutes=60)).isoformat(),
        "start_local": "2026-11-24T10:00:00+00:00", "end_local": "2026-11-24T11:00:00+00:00",
        "status": "open", "offered_at": offer.created_at.isoformat(),
        "expires_at": offer.expires_at.isoformat(), "answered_at": None, "booking_id": None,
    }
    # The API gives the same lists.
    api = client.get("/api/v1/clients/me/export", headers=token_for(app, scene.a))
    assert api.status_code == 200
    assert api.json["waitlist_entries"] == data["waitlist_entries"]
    assert api.json["waitlist_offers"] == data["waitlist_offers"]


def test_export_of_an_answered_offer_says_when_and_which_booking(app, client, db, scene,
                                                                 offer, clock):
    clock.advance(timedelta(minutes=3))
    booking = offers.accept(db.session, offer, client=scene.a, now=clock.now())
    db.session.commit()
    data = _export(client, scene.a)
    [made] = data["waitlist_offers"]
    assert made["status"] == "accepted" and made["booking_id"] == booking.id
    assert made["answered_at"] == clock.now().isoformat()
    assert data["waitlist_entries"][0]["status"] == "booked"
    assert booking.id in [b["id"] for b in data["bookings"]]


def test_export_never_shows_another_clients_entries_or_offers(app, client, db, scene, offer):
    theirs = {scene.entry_of(p).id for p in (scene.e, scene.f)}
    data = _export(client, scene.a)
    assert not theirs & {e["id"] for e in data["waitlist_entries"]}
    # Eve waits too, but the offer went to Ada: Eve's export has her entry and no offer.
    eve = client.get("/api/v1/clients/me/export", headers=token_for(app, scene.e)).json
    assert [e["id"] for e in eve["waitlist_entries"]] == [scene.entry_of(scene.e).id]
    assert eve["waitlist_offers"] == []
    # Bob (who cancelled the slot) never joined: both lists are empty.
    bob = client.get("/api/v1/clients/me/export", headers=token_for(app, scene.b)).json
    assert bob["waitlist_entries"] == [] and bob["waitlist_offers"] == []


def test_export_calls_an_ended_range_and_a_lapsed_offer_expired(app, client, db, scene,
                                                                offer, clock):
    # Past the end of the range (27 Nov) and the offer's 30 minutes, before the worker ran.
    clock.advance(timedelta(days=5))
    data = _export(client, scene.a)
    assert [e["status"] for e in data["waitlist_entries"]] == ["expired"]
    assert [o["status"] for o in data["waitlist_offers"]] == ["expired"]
    db.session.expire_all()
    assert scene.entry_of(scene.a).status == "waiting"  # the export changes nothing
    assert db.session.get(WaitlistOffer, offer.id).status == "open"


# --- closing ----------------------------------------------------------------------------------


def test_closing_an_account_ends_entries_and_withdraws_the_open_offer(app, client, db, scene,
                                                                      offer, clock):
    hold_id = offer.hold_id
    login(client, scene.a)
    response = client.post("/account/close", data={"close-password": PASSWORD})
    assert response.status_code == 200 and "Your account is closed" in response.get_data(
        as_text=True)

    db.session.expire_all()
    assert scene.entry_of(scene.a).status == "left"
    assert db.session.get(WaitlistOffer, offer.id).status == "withdrawn"
    assert db.session.get(Booking, hold_id) is None  # the hold is released
    # The time is queued again, and the offer email (if unsent) will never go.
    queued = db.session.scalars(select(FreedTime).where(
        FreedTime.reason == "offer_withdrawn", FreedTime.processed_at.is_(None))).all()
    assert [(q.start_at, q.source_booking_id) for q in queued] == [(TUE_10, hold_id)]
    mail = db.session.scalar(select(OutboxMessage).where(
        OutboxMessage.key == f"waitlist-offer:{offer.id}"))
    assert mail.status == "retired"
    # Other clients' entries are untouched.
    assert {scene.entry_of(p).status for p in (scene.e, scene.f)} == {"waiting"}
    # The slot is bookable again by someone else at once, before any job runs.
    booked = booking_service.book(db.session, client=scene.b,
                                  service_id=scene.clinic.service.id, start=TUE_10,
                                  now=clock.now())
    assert booked.start_at == TUE_10


def test_after_closing_the_next_round_offers_the_slot_to_the_next_match(app, db, scene, offer,
                                                                        clock):
    privacy.close_account(db.session, scene.a, PASSWORD, clock.now())
    db.session.commit()
    result = offers.run_round(db.session, clock.now())
    db.session.commit()
    assert result.withdrawn == 0  # already withdrawn by the closing
    [second] = db.session.scalars(select(WaitlistOffer).where(WaitlistOffer.status == "open"))
    assert second.client_id == scene.e.id and second.start_at == TUE_10


def test_closing_with_a_wrong_password_leaves_the_waitlist_as_it_was(app, client, db, scene,
                                                                     offer, clock):
    login(client, scene.a)
    response = client.post("/account/close", data={"close-password": "wrong-password!"})
    assert response.status_code == 422
    with pytest.raises(ValidationFailed):
        privacy.close_account(db.session, scene.a, "wrong", clock.now())
    db.session.rollback()
    db.session.expire_all()
    assert scene.entry_of(scene.a).status == "waiting"
    assert db.session.get(WaitlistOffer, offer.id).status == "open"
    assert offers.hold_for(db.session, db.session.get(WaitlistOffer, offer.id)) is not None
    with pytest.raises(SlotTaken):
        booking_service.book(db.session, client=scene.b, service_id=scene.clinic.service.id,
                             start=TUE_10, now=clock.now())
