"""``care.recommendation_and_intake``: the booking's one read of the client's current
recommendation and intake answers exactly what the two separate look-ups answer."""

from __future__ import annotations

from datetime import date
from datetime import timedelta

from clinic_app.models import Intake
from clinic_app.services import care
from tests.factories import make_user
from tests.factories.accounts import now_of
from tests.factories.booking import make_booking
from tests.factories.booking import make_clinic
from tests.factories.care import add_recommendation
from tests.factories.schedule import local


def test_a_client_with_neither_gets_two_nones(app, db):
    client = make_user(app)
    assert care.recommendation_and_intake(db.session, client.id) == (None, None)
    assert care.recommendation_and_intake(db.session, 999_999) == (None, None)  # no such user


def test_the_newest_recommendation_and_the_intake_in_one_read(app, db):
    clinic = make_clinic(app)
    client, other = clinic.client, make_user(app)
    first = make_booking(app, clinic, local(2026, 11, 24, 10), client=client)
    second = make_booking(app, clinic, local(2026, 11, 25, 10), client=client)
    make_booking(app, clinic, local(2026, 11, 26, 10), client=other)
    add_recommendation(app, first, earliest=date(2026, 12, 1), ideal=date(2026, 12, 3),
                       latest=date(2026, 12, 8))
    app.extensions["clock"].advance(timedelta(minutes=1))
    newest = add_recommendation(app, second, earliest=date(2026, 12, 2),
                                ideal=date(2026, 12, 4), latest=date(2026, 12, 9))
    db.session.add(Intake(client_id=client.id, answers={}, flags=["confirm_first"],
                          updated_at=now_of(app)))
    db.session.commit()
    rec, intake = care.recommendation_and_intake(db.session, client.id)
    assert rec is not None and rec.id == newest.id
    assert rec.id == care.current_recommendation(db.session, client).id
    assert intake is not None and intake.id == care.intake_for(db.session, client.id).id
    assert care.status_for_intake(intake) == "pending" == care.initial_status_for(
        db.session, client)
    # Only the client's own rows: the other client has a booking and nothing else.
    assert care.recommendation_and_intake(db.session, other.id) == (None, None)
