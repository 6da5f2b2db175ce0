"""An offered slot under fire (issue 13.6): 20 simultaneous requests, accepts by the client
and bookings of the same slot by others, against a real threaded server, give exactly one
booking, on SQLite (``BEGIN IMMEDIATE``) and PostgreSQL (conditional UPDATE, row lock,
exclusion constraints)."""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func
from sqlalchemy import select

from clinic_app.models import Booking
from clinic_app.models import WaitlistOffer
from clinic_app.services.accounts import issue_api_token
from tests.factories import now_of
from tests.factories.waitlist import TUE_10
from tests.factories.waitlist import cancel_and_offer
from tests.factories.waitlist import make_scene
from tests.integration.test_concurrency import OVERLAPS_SQL
from tests.integration.test_concurrency import Api
from tests.integration.test_concurrency import clients_with_tokens
from tests.live_server import live_server_factory  # noqa: F401  (fixture)

ACCEPTS = 10
BOOKERS = 10


@pytest.fixture(autouse=True)
def _quiet_request_log(caplog):
    caplog.set_level("WARNING", logger="werkzeug")


def _storm(app, db, live_server_factory, *, expired: bool):  # noqa: F811
    scene = make_scene(app)
    offer = cancel_and_offer(app, scene)
    raw, _ = issue_api_token(db.session, scene.a, now_of(app), days=30)
    others = clients_with_tokens(app, db, BOOKERS, "racer")
    if expired:
        # The hold lapsed a moment ago and the job has not run: accepts race bookings.
        app.extensions["clock"].advance(timedelta(minutes=30))
    offer_id, hold_id = offer.id, offer.hold_id
    service_id, therapist_id = scene.clinic.service.id, scene.clinic.t1.id
    api = Api(live_server_factory(app))
    calls: list[tuple[str, str | None, dict[str, Any] | None, str]] = (
        [("POST", f"/waitlist/offers/{offer_id}/accept", None, raw)] * ACCEPTS
        + [("POST", "/bookings", {"service_id": service_id, "start": TUE_10.isoformat(),
                                  "therapist_id": therapist_id}, token) for token in others])
    barrier = threading.Barrier(len(calls))

    def attempt(call: tuple[str, str, dict[str, Any] | None, str]) -> tuple[str, int, Any]:
        method, path, body, token = call
        barrier.wait(timeout=30)  # all 20 requests leave together
        status, data = api.call(method, path, token, body)
        return ("accept" if "accept" in path else "book"), status, data

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        results = list(pool.map(attempt, calls))
    outcomes = Counter((kind, status) for kind, status, _ in results)
    db.session.rollback()
    active = db.session.scalars(select(Booking).where(
        Booking.therapist_id == therapist_id, Booking.start_at == TUE_10,
        Booking.status.in_(("booked", "pending")))).all()
    assert len(active) == 1, outcomes
    assert db.session.scalar(OVERLAPS_SQL) == 0
    assert not [r for r in results if r[1] >= 500], results
    for kind, status, data in results:
        if status == 409:
            expected = "offer_expired" if kind == "accept" else "slot_taken"
            assert data["error"]["code"] == expected, (kind, data)
    return outcomes, active[0], scene, offer_id, hold_id


@pytest.mark.real_db
def test_twenty_accepts_and_bookings_on_a_live_offer_give_one_booking(
        app, db, live_server_factory):  # noqa: F811
    outcomes, booking, scene, offer_id, hold_id = _storm(app, db, live_server_factory,
                                                          expired=False)
    # The hold blocks the slot for the bookers; exactly one accept wins.
    assert outcomes == {("accept", 201): 1, ("accept", 409): ACCEPTS - 1,
                        ("book", 409): BOOKERS}, outcomes
    assert booking.id == hold_id and booking.client_id == scene.a.id
    offer = db.session.get(WaitlistOffer, offer_id)
    assert offer.status == "accepted" and offer.booking_id == booking.id
    assert db.session.scalar(select(func.count(Booking.id)).where(
        Booking.client_id == scene.a.id, Booking.start_at == TUE_10)) == 1


@pytest.mark.real_db
def test_twenty_accepts_and_bookings_on_a_lapsed_offer_give_one_booking(
        app, db, live_server_factory):  # noqa: F811
    outcomes, booking, scene, offer_id, _ = _storm(app, db, live_server_factory, expired=True)
    # The hold has expired: no accept succeeds, one booker gets the slot.
    assert outcomes == {("accept", 409): ACCEPTS, ("book", 201): 1,
                        ("book", 409): BOOKERS - 1}, outcomes
    assert booking.client_id != scene.a.id
    assert db.session.get(WaitlistOffer, offer_id).status == "open"  # the job expires it
