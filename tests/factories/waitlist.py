"""Waitlist offers: a small scene where a cancelled slot is offered (issue 13.2).

One therapist and one room (the freed time is one person's slot). Bob has Tuesday 24 Nov
10:00 and will cancel. Eve joined the waitlist first (no recommendation), Fay second (her
earliest, 30 Nov, is after the slot: never offered it), Ada last (her recommended window,
22-28 Nov, contains the slot: she is offered it first). Everyone waits for 24-27 Nov.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from datetime import datetime
from datetime import timedelta
from typing import Any

from sqlalchemy import select

from clinic_app.extensions import db
from clinic_app.models import Booking
from clinic_app.models import User
from clinic_app.models import WaitlistEntry
from clinic_app.models import WaitlistOffer
from clinic_app.services import booking as booking_service
from clinic_app.services import waitlist
from clinic_app.services import waitlist_offers
from tests.factories.accounts import make_user
from tests.factories.accounts import now_of
from tests.factories.booking import Clinic
from tests.factories.booking import make_booking
from tests.factories.booking import make_clinic
from tests.factories.care import add_recommendation
from tests.factories.schedule import local

TUE_10 = local(2026, 11, 24, 10)  # the freed slot; the frozen clock is Mon 23 Nov 08:00 UTC
WINDOW = (date(2026, 11, 22), date(2026, 11, 24), date(2026, 11, 28))


@dataclass
class Scene:
    clinic: Clinic
    a: User  # joined last; their recommended window contains the slot
    e: User  # joined first; no recommendation
    f: User  # joined second; their earliest (30 Nov) is after the slot
    b: User  # booked Tuesday 10:00 and will cancel
    booking: Booking

    def entry_of(self, user: User) -> WaitlistEntry:
        entry = db.session.scalar(select(WaitlistEntry).where(WaitlistEntry.client_id == user.id))
        assert entry is not None
        return entry


def give_window(app: Any, clinic: Clinic, client: User, earliest: date, ideal: date,
                latest: date, *, hour: int = 10) -> None:
    """A past session of ``client`` on Mon 16 Nov at ``hour`` with this recommended window."""
    past = make_booking(app, clinic, local(2026, 11, 16, hour), client=client)
    add_recommendation(app, past, earliest=earliest, ideal=ideal, latest=latest)


def join(app: Any, clinic: Clinic, client: User, **kw: Any) -> WaitlistEntry:
    """``client`` joins the waitlist (default: the clinic's service, 24-27 Nov)."""
    kw.setdefault("date_from", date(2026, 11, 24))
    kw.setdefault("date_to", date(2026, 11, 27))
    entry = waitlist.join(db.session, client=client, actor=client,
                          service_id=kw.pop("service_id", clinic.service.id), now=now_of(app),
                          **kw)
    db.session.commit()
    return entry


def make_scene(app: Any, *, emails: tuple[str, ...] = ("ada", "eve", "fay", "bob")) -> Scene:
    """The scene of the module docstring (joins one minute apart on the app's clock)."""
    clock = app.extensions["clock"]
    clinic = make_clinic(app, therapists=1, rooms=1)
    a, e, f, b = (make_user(app, name=n.capitalize(), email=f"{n}@example.com") for n in emails)
    booking = make_booking(app, clinic, TUE_10, client=b)
    give_window(app, clinic, a, *WINDOW)
    give_window(app, clinic, f, date(2026, 11, 30), date(2026, 12, 2), date(2026, 12, 6),
                hour=14)
    for person in (e, f, a):
        join(app, clinic, person)
        clock.advance(timedelta(minutes=1))
    return Scene(clinic, a, e, f, b, booking)


def cancel_and_offer(app: Any, scene: Scene) -> WaitlistOffer:
    """Bob cancels and one round of the offer job runs; returns the offer of his slot (a
    shared database may have queued other freed time too)."""
    booking_service.cancel(db.session, scene.booking, actor=scene.b, now=now_of(app))
    db.session.commit()
    result = waitlist_offers.run_round(db.session, now_of(app))
    db.session.commit()
    [offer] = [o for o in (db.session.get(WaitlistOffer, i) for i in result.offers)
               if o is not None and o.therapist_id == scene.clinic.t1.id]
    return offer


def make_offer(app: Any, clinic: Clinic, status: str, created: datetime, *,
               freed: datetime | None = None, responded: datetime | None = None,
               expires: datetime | None = None) -> WaitlistOffer:
    """A waitlist offer row (and its entry, for a new client) as the job and the answers
    leave it, made at ``created`` for a slot a day later; for figures read off the offers
    (the continuity panel). Tests of the flow itself drive ``waitlist_offers`` instead."""
    person = make_user(app)
    entry = WaitlistEntry(client_id=person.id, service_id=clinic.service.id,
                          date_from=created.date(), date_to=created.date(), parts_of_day=[],
                          status="waiting", created_at=created, updated_at=created)
    db.session.add(entry)
    db.session.flush()
    start = created + timedelta(days=1)
    offer = WaitlistOffer(
        entry_id=entry.id, client_id=person.id, service_id=clinic.service.id,
        therapist_id=clinic.t1.id, start_at=start, end_at=start + timedelta(hours=1),
        hold_id=0, status=status, freed_at=freed or created, created_at=created,
        expires_at=expires or created + timedelta(minutes=30), responded_at=responded)
    db.session.add(offer)
    db.session.commit()
    return offer
