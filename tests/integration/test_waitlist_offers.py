"""Waitlist offers (issue 13.2): a freed slot goes to the client who needs it most, held for
them; declining or expiry passes it on; one open offer per client; one email per client per
freed slot; exactly one booking however the answers race."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from clinic_app.errors import NotFound
from clinic_app.errors import SlotTaken
from clinic_app.errors import ValidationFailed
from clinic_app.models import Booking
from clinic_app.models import FreedTime
from clinic_app.models import OutboxMessage
from clinic_app.models import User
from clinic_app.models import WaitlistOffer
from clinic_app.models import WorkerJobRun
from clinic_app.models.booking import INCLUDE_HOLDS
from clinic_app.services import booking as booking_service
from clinic_app.services import holds
from clinic_app.services import waitlist
from clinic_app.services import waitlist_offers as offers
from clinic_app.services.settings import get_settings
from clinic_app.worker import waitlist_offers_job
from tests.factories import make_booking
from tests.factories import make_service
from tests.factories import make_user
from tests.factories.care import add_recommendation
from tests.factories.notify import run_job
from tests.factories.schedule import local
from tests.factories.waitlist import TUE_10
from tests.factories.waitlist import WINDOW
from tests.factories.waitlist import join
from tests.factories.waitlist import make_scene


@pytest.fixture
def scene(app):
    return make_scene(app)


def cancel(db, scene, clock):
    booking_service.cancel(db.session, scene.booking, actor=scene.b, now=clock.now())
    db.session.commit()


def round_(db, clock) -> offers.OfferRound:
    result = offers.run_round(db.session, clock.now())
    db.session.commit()
    return result


def open_offers(db) -> list[WaitlistOffer]:
    return list(db.session.scalars(select(WaitlistOffer).where(WaitlistOffer.status == "open")
                                   .order_by(WaitlistOffer.id)))


def offer_mail(db, user: User) -> list[OutboxMessage]:
    return list(db.session.scalars(select(OutboxMessage).where(
        OutboxMessage.kind == "waitlist_offer", OutboxMessage.user_id == user.id)))


def hold_of(db, offer: WaitlistOffer) -> Booking | None:
    return offers.hold_for(db.session, offer)


def test_a_cancelled_slot_is_offered_to_the_client_due_now(app, db, scene, clock):
    cancel(db, scene, clock)
    result = round_(db, clock)
    assert result.ranges == 1 and result.pending == 0 and result.failures == []
    [offer] = open_offers(db)
    # Ada's window contains the slot: she beats Eve, who joined earlier without a window;
    # Fay's earliest is after the slot, so she is never a candidate.
    assert offer.client_id == scene.a.id and offer.entry_id == scene.entry_of(scene.a).id
    assert (offer.start_at, offer.end_at) == (TUE_10, TUE_10 + timedelta(minutes=60))
    assert offer.therapist_id == scene.clinic.t1.id and offer.service_id == scene.clinic.service.id
    assert offer.expires_at == clock.now() + timedelta(minutes=30)  # offer_minutes default
    assert offer.freed_at == db.session.scalar(select(FreedTime.created_at))
    hold = hold_of(db, offer)
    assert hold is not None and hold.client_id == scene.a.id and hold.hold_purpose == "offer"
    assert hold.expires_at == offer.expires_at and hold.start_at == TUE_10
    [mail] = offer_mail(db, scene.a)
    assert mail.key == f"waitlist-offer:{offer.id}" and mail.params == {"offer": offer.id}
    assert mail.to_addr == "ada@example.com" and mail.booking_id is None
    assert db.session.scalar(select(FreedTime.processed_at)) == clock.now()
    # The queue is empty: a second round does nothing.
    again = round_(db, clock)
    assert again.ranges == 0 and again.offers == [] and len(open_offers(db)) == 1


def test_the_held_slot_is_refused_to_everyone_else(app, db, scene, clock):
    cancel(db, scene, clock)
    round_(db, clock)
    with pytest.raises(SlotTaken):
        booking_service.book(db.session, client=scene.b, service_id=scene.clinic.service.id,
                             start=TUE_10, now=clock.now())


def test_nothing_is_offered_when_nobody_waits_for_that_day(app, db, scene, clock):
    for person in (scene.a, scene.e, scene.f):
        waitlist.leave(db.session, scene.entry_of(person), clock.now())
    db.session.commit()
    cancel(db, scene, clock)
    result = round_(db, clock)
    assert result.ranges == 1 and result.offers == [] and open_offers(db) == []
    assert db.session.scalar(select(FreedTime.processed_at)) is not None


def test_a_decline_passes_the_slot_to_the_next_match(app, db, scene, clock):
    cancel(db, scene, clock)
    round_(db, clock)
    [first] = open_offers(db)
    offers.decline(db.session, first, client=scene.a, now=clock.now())
    db.session.commit()
    assert first.status == "declined" and first.responded_at == clock.now()
    assert hold_of(db, first) is None
    queued = db.session.scalars(select(FreedTime).where(FreedTime.processed_at.is_(None))).all()
    assert [(q.start_at, q.reason) for q in queued] == [(TUE_10, "offer_declined")]
    round_(db, clock)
    [second] = open_offers(db)
    assert second.client_id == scene.e.id and second.start_at == TUE_10
    # The slot has been empty since the cancellation, not since the decline.
    assert second.freed_at == first.freed_at
    # Eve declines too: Fay's earliest is after the slot and Ada was asked already.
    offers.decline(db.session, second, client=scene.e, now=clock.now())
    db.session.commit()
    assert round_(db, clock).offers == [] and open_offers(db) == []
    assert [len(offer_mail(db, p)) for p in (scene.a, scene.e, scene.f)] == [1, 1, 0]
    assert scene.entry_of(scene.a).status == "waiting"  # still waiting for another time


def test_expiry_passes_the_offer_on(app, db, scene, clock):
    cancel(db, scene, clock)
    round_(db, clock)
    [first] = open_offers(db)
    clock.advance(timedelta(minutes=29, seconds=59))
    assert round_(db, clock).expired == 0
    clock.advance(timedelta(seconds=1))  # expires_at: no longer alive
    with pytest.raises(offers.OfferExpired):
        offers.accept(db.session, first, client=scene.a, now=clock.now())
    db.session.rollback()
    result = run_job(waitlist_offers_job, app)
    assert result.expired == 1 and len(result.offers) == 1
    db.session.expire_all()
    assert db.session.get(WaitlistOffer, first.id).status == "expired"
    assert hold_of(db, first) is None
    [second] = open_offers(db)
    assert second.client_id == scene.e.id
    assert second.expires_at == clock.now() + timedelta(minutes=30)


def test_accept_books_the_held_slot_for_the_client(app, db, scene, clock):
    cancel(db, scene, clock)
    round_(db, clock)
    [offer] = open_offers(db)
    hold_id = offer.hold_id
    clock.advance(timedelta(minutes=5))
    booking = offers.accept(db.session, offer, client=scene.a, now=clock.now())
    db.session.commit()
    assert booking.id == hold_id and booking.status == "booked"
    assert booking.client_id == scene.a.id and booking.start_at == TUE_10
    assert (offer.status, offer.booking_id, offer.responded_at) == (
        "accepted", booking.id, clock.now())
    assert scene.entry_of(scene.a).status == "booked"
    assert db.session.scalar(select(func.count(OutboxMessage.id)).where(
        OutboxMessage.kind == "booking_confirmation", OutboxMessage.booking_id == booking.id,
        OutboxMessage.user_id == scene.a.id)) == 1
    # A second answer (accept or decline) finds it answered.
    with pytest.raises(offers.OfferExpired):
        offers.accept(db.session, offer, client=scene.a, now=clock.now())
    db.session.rollback()
    with pytest.raises(offers.OfferExpired):
        offers.decline(db.session, offer, client=scene.a, now=clock.now())
    db.session.rollback()
    assert db.session.get(Booking, booking.id).status == "booked"
    assert round_(db, clock).offers == []  # nothing was freed


def test_only_the_client_may_answer_their_offer(app, db, scene, clock):
    cancel(db, scene, clock)
    round_(db, clock)
    [offer] = open_offers(db)
    with pytest.raises(NotFound):
        offers.get_offer_for(db.session, offer.id, scene.e)
    with pytest.raises(NotFound):
        offers.accept(db.session, offer, client=scene.e, now=clock.now())
    with pytest.raises(NotFound):
        offers.decline(db.session, offer, client=scene.e, now=clock.now())
    with pytest.raises(NotFound):
        offers.get_offer_for(db.session, 2**40, scene.a)
    db.session.rollback()
    assert offers.get_offer_for(db.session, offer.id, scene.a) is offer
    assert offers.open_offers_for(db.session, scene.a, clock.now()) == [offer]
    assert offers.open_offers_for(db.session, scene.e, clock.now()) == []
    clock.advance(timedelta(minutes=30))
    assert offers.open_offers_for(db.session, scene.a, clock.now()) == []


def test_one_open_offer_per_client(app, db, scene, clock):
    # A second slot frees on Wednesday: Ada (who holds Tuesday's) is skipped, Eve gets it.
    wed = make_booking(app, scene.clinic, local(2026, 11, 25, 10), client=scene.b)
    cancel(db, scene, clock)
    booking_service.cancel(db.session, wed, actor=scene.b, now=clock.now())
    db.session.commit()
    round_(db, clock)
    assert [(o.client_id, o.start_at) for o in open_offers(db)] == [
        (scene.a.id, TUE_10), (scene.e.id, local(2026, 11, 25, 10))]
    # The database refuses a second open offer for one client, whatever the code does.
    first = open_offers(db)[0]
    db.session.add(WaitlistOffer(
        entry_id=first.entry_id, client_id=first.client_id, service_id=first.service_id,
        therapist_id=first.therapist_id, start_at=first.start_at + timedelta(days=3),
        end_at=first.end_at + timedelta(days=3), hold_id=first.hold_id, status="open",
        freed_at=clock.now(), created_at=clock.now(), expires_at=first.expires_at))
    with pytest.raises(IntegrityError):
        db.session.flush()
    db.session.rollback()


def test_the_same_slot_freed_twice_is_offered_and_mailed_once(app, db, scene, clock):
    cancel(db, scene, clock)
    round_(db, clock)
    [offer] = open_offers(db)
    offers.decline(db.session, offer, client=scene.a, now=clock.now())
    db.session.commit()
    round_(db, clock)  # Eve's turn
    [eve] = open_offers(db)
    clock.advance(timedelta(minutes=31))
    round_(db, clock)  # Eve's expires; nobody else may have it
    assert open_offers(db) == []
    # The same time queued again (say a second change) reaches nobody who was asked.
    db.session.add(FreedTime(therapist_id=scene.clinic.t1.id, start_at=TUE_10,
                             end_at=TUE_10 + timedelta(minutes=75), reason="cancelled",
                             created_at=clock.now()))
    db.session.commit()
    assert round_(db, clock).offers == []
    assert [len(offer_mail(db, p)) for p in (scene.a, scene.e)] == [1, 1]
    assert eve.status == "expired"


def test_an_overlapping_later_start_is_not_offered_to_a_decliner(app, db, scene, clock):
    cancel(db, scene, clock)
    round_(db, clock)
    [offer] = open_offers(db)
    for person in (scene.e, scene.f):  # only Ada waits now
        waitlist.leave(db.session, scene.entry_of(person), clock.now())
    offers.decline(db.session, offer, client=scene.a, now=clock.now())
    db.session.commit()
    # 10:15 and 10:30 are free now too, but they overlap the 10:00 slot Ada turned down.
    assert round_(db, clock).offers == []


def test_an_expired_signup_hold_is_announced_once(app, db, scene, clock):
    hold = holds.place_hold(db.session, service_id=scene.clinic.service.id,
                            start=local(2026, 11, 24, 14), purpose="signup", minutes=10,
                            now=clock.now())
    db.session.commit()
    assert round_(db, clock).holds_announced == 0  # still alive
    clock.advance(timedelta(minutes=10))
    result = round_(db, clock)
    assert result.holds_announced == 1 and len(result.offers) == 1
    [offer] = open_offers(db)
    assert (offer.client_id, offer.start_at) == (scene.a.id, local(2026, 11, 24, 14))
    queued = db.session.scalar(select(FreedTime).where(FreedTime.reason == "hold_expired"))
    assert queued.source_booking_id == hold.id
    assert round_(db, clock).holds_announced == 0  # once


def test_leaving_the_waitlist_withdraws_the_open_offer(app, db, scene, clock):
    cancel(db, scene, clock)
    round_(db, clock)
    [offer] = open_offers(db)
    waitlist.leave(db.session, scene.entry_of(scene.a), clock.now())
    db.session.commit()
    result = round_(db, clock)
    assert result.withdrawn == 1 and offer.status == "withdrawn"
    assert hold_of(db, offer) is None
    [second] = open_offers(db)
    assert second.client_id == scene.e.id


def test_a_client_referred_since_joining_is_skipped(app, db, scene, clock):
    past = db.session.scalar(select(Booking).where(Booking.client_id == scene.a.id))
    add_recommendation(app, past, earliest=WINDOW[0], ideal=WINDOW[1], latest=WINDOW[2],
                       action="refer")
    cancel(db, scene, clock)
    round_(db, clock)
    [offer] = open_offers(db)
    assert offer.client_id == scene.e.id


def test_a_closed_account_is_never_offered_a_slot(app, db, scene, clock):
    scene.a.is_active = False
    db.session.commit()
    cancel(db, scene, clock)
    round_(db, clock)
    assert [o.client_id for o in open_offers(db)] == [scene.e.id]


def test_the_freed_time_goes_to_whichever_service_is_wanted(app, db, scene, clock):
    # Only a 30-minute service is waited for on Tuesday: the therapist offers it too.
    short = make_service(app, therapists=[scene.clinic.t1], rooms=[scene.clinic.room],
                         minutes=30, after=0)
    for person in (scene.a, scene.e, scene.f):
        waitlist.leave(db.session, scene.entry_of(person), clock.now())
    db.session.commit()
    joiner = make_user(app)
    join(app, scene.clinic, joiner, service_id=short.id)
    cancel(db, scene, clock)
    round_(db, clock)
    [offer] = open_offers(db)
    assert (offer.client_id, offer.service_id, offer.start_at) == (joiner.id, short.id, TUE_10)
    assert offer.end_at == TUE_10 + timedelta(minutes=30)


def test_the_offer_never_outlives_the_slot(app, db, scene, clock):
    get_settings(db.session).offer_minutes = 24 * 60
    db.session.commit()
    cancel(db, scene, clock)
    round_(db, clock)
    [offer] = open_offers(db)
    assert offer.expires_at <= offer.start_at


def test_a_failing_range_is_recorded_and_does_not_block_the_queue(app, db, scene, clock,
                                                                  monkeypatch):
    wed = make_booking(app, scene.clinic, local(2026, 11, 25, 10), client=scene.b)
    cancel(db, scene, clock)
    booking_service.cancel(db.session, wed, actor=scene.b, now=clock.now())
    db.session.commit()
    real = offers.offer_freed_time
    calls = []

    def flaky(session, row, now):
        calls.append(row.id)
        if len(calls) == 1:
            raise ValueError("boom")
        return real(session, row, now)

    monkeypatch.setattr(offers, "offer_freed_time", flaky)
    result = round_(db, clock)
    assert result.ranges == 2 and len(result.failures) == 1 and "boom" in result.failures[0]
    assert [o.start_at for o in open_offers(db)] == [local(2026, 11, 25, 10)]
    assert db.session.scalar(select(func.count(FreedTime.id)).where(
        FreedTime.processed_at.is_(None))) == 0


def test_the_job_records_its_run(app, db, scene, clock):
    cancel(db, scene, clock)
    result = run_job(waitlist_offers_job, app)
    assert len(result.offers) == 1 and result.pending == 0
    row = db.session.get(WorkerJobRun, "waitlist_offers")
    assert row is not None and row.last_ok_at == clock.now() and row.failures == 0


def test_no_hold_is_left_without_its_offer(app, db, scene, clock):
    cancel(db, scene, clock)
    round_(db, clock)
    held = db.session.scalars(select(Booking).where(Booking.status == "held")
                              .execution_options(**{INCLUDE_HOLDS: True})).all()
    assert [h.id for h in held] == [o.hold_id for o in open_offers(db)]


def test_an_accept_refused_by_the_booking_rules_books_nothing(app, db, scene, clock):
    cancel(db, scene, clock)
    round_(db, clock)
    [offer] = open_offers(db)
    get_settings(db.session).max_upcoming_per_client = 1
    make_booking(app, scene.clinic, local(2026, 11, 26, 10), client=scene.a)
    with pytest.raises(ValidationFailed) as refused:
        offers.accept(db.session, offer, client=scene.a, now=clock.now())
    assert refused.value.code == "over_cap"
    db.session.rollback()
    assert db.session.get(WaitlistOffer, offer.id).status == "open"
    assert hold_of(db, offer) is not None


def test_a_lapsed_offer_never_touches_a_hold_that_reused_its_id(app, db, scene, clock):
    cancel(db, scene, clock)
    round_(db, clock)
    [offer] = open_offers(db)
    clock.advance(timedelta(minutes=31))
    # Bob books the slot back before the job runs: his booking deletes the expired hold...
    booking_service.book(db.session, client=scene.b, service_id=scene.clinic.service.id,
                         start=TUE_10, now=clock.now())
    db.session.commit()
    # ...and a visitor's new hold may get its id (SQLite reuses the last row's id).
    visitor = holds.place_hold(db.session, service_id=scene.clinic.service.id,
                               start=local(2026, 11, 24, 14), purpose="signup", minutes=10,
                               now=clock.now())
    db.session.commit()
    assert round_(db, clock).expired == 1 and offer.status == "expired"
    assert holds.get_hold(db.session, visitor.id) is not None
