"""The rebooking prompt offers concrete free slots inside the recommended window.

The planner writes the prompt (often days ahead), renders it again shortly before it goes so
that its slots are still free, and the dispatcher sends it at 10:00 clinic time on the ideal
date. The last session's therapist comes first (R5), then the others.
"""

from __future__ import annotations

import re
from datetime import UTC
from datetime import date
from datetime import datetime
from datetime import time
from datetime import timedelta

import pytest
from sqlalchemy import event

from clinic_app.extensions import db as ext_db
from clinic_app.models import HoursOverride
from clinic_app.worker import plan_due_messages_job
from tests.conftest import path_of
from tests.factories import make_room
from tests.factories import make_service
from tests.factories import make_therapist
from tests.factories import make_user
from tests.factories.accounts import login
from tests.factories.notify import Clinic
from tests.factories.notify import add_recommendation
from tests.factories.notify import cancel
from tests.factories.notify import complete
from tests.factories.notify import make_booking
from tests.factories.notify import rows
from tests.factories.notify import run_job

SUBJECT = "Time to book your next session"
# The fixtures' clock: Mon 23 Nov 2026 08:00 UTC. The session: Wed 25 Nov, 10:00-11:00 GMT.
START = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
# The window: earliest Sat 28 Nov, ideal Mon 30 Nov, latest Thu 3 Dec (Europe/London, GMT).
EARLIEST, IDEAL, LATEST = date(2026, 11, 28), date(2026, 11, 30), date(2026, 12, 3)
SEND = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)  # 10:00 GMT on the ideal date
SLOT_LINE = re.compile(r"^- (\w{3} (\d\d \w{3} \d{4}), \d\d:\d\d GMT \(Europe/London\)) "
                       r"with (.+?)( \(your therapist\))?$", re.M)


def _two_therapists(app) -> tuple[Clinic, object]:
    """Maya (the client's therapist) works only Tuesdays 09:00-11:00, Tom Mon-Sat."""
    maya = make_therapist(app, name="Maya Patel", email="maya@example.com",
                          hours={1: [(time(9), time(11))]})
    tom = make_therapist(app, name="Tom Reed", email="tom@example.com")
    rooms = [make_room(app, "Room A"), make_room(app, "Room B")]
    service = make_service(app, therapists=[maya, tom], rooms=rooms, name="Trigger point 60")
    client = make_user(app, email="client@example.com", name="Casey Client")
    return Clinic(maya, rooms[0], service, client), tom


def _one_therapist(app) -> Clinic:
    maya = make_therapist(app, name="Maya Patel", email="maya@example.com")
    room = make_room(app, "Room A")
    service = make_service(app, therapists=[maya], rooms=[room], name="Trigger point 60")
    client = make_user(app, email="client@example.com", name="Casey Client")
    return Clinic(maya, room, service, client)


def _session_with_window(app, clock, clinic: Clinic) -> object:
    booking = make_booking(app, clinic, START)
    clock.set(START + timedelta(hours=2))
    complete(app, booking)
    add_recommendation(app, booking, earliest=EARLIEST, ideal=IDEAL, latest=LATEST)
    return booking


def _run(app, mailbox, clock, moment: datetime) -> list:
    """Planner then dispatcher at ``moment``; the prompts delivered by this run."""
    before = len(mailbox.messages())
    clock.set(moment)
    run_job(plan_due_messages_job, app)
    return [m for m in mailbox.deliver()[before:] if m["Subject"] == SUBJECT]


def _text(mailbox, message) -> str:
    return mailbox.text(message).replace("\r\n", "\n")


def _html(message) -> str:
    return message.get_body(preferencelist=("html",)).get_content()


def test_prompt_lists_slots_in_the_window_with_the_same_therapist_first(
        app, db, clock, mailbox, client):
    clinic, tom = _two_therapists(app)
    _session_with_window(app, clock, clinic)
    # Nothing before the ideal date, 10:00 clinic time.
    assert _run(app, mailbox, clock, SEND - timedelta(minutes=1)) == []
    prompts = _run(app, mailbox, clock, SEND)
    assert len(prompts) == 1
    text = _text(mailbox, prompts[0])
    assert "times in Europe/London" in text
    slots = SLOT_LINE.findall(text)
    assert 1 <= len(slots) <= 6
    assert len(slots) == 6  # Maya's Tuesday morning plus Tom's times fill the list
    names = [name for _, _, name, _ in slots]
    # Maya (the last session's therapist) first, although Tom is free earlier (Monday).
    assert names[0] == "Maya Patel" and "Tom Reed" in names
    assert names == sorted(names, key=lambda n: n != "Maya Patel")
    assert all(bool(mine) == (name == "Maya Patel") for _, _, name, mine in slots)
    assert slots[0][0] == "Tue 01 Dec 2026, 09:00 GMT (Europe/London)"
    for when, day, _, _ in slots:
        local_day = datetime.strptime(day, "%d %b %Y").date()
        assert IDEAL <= local_day <= LATEST, when
        # At least an hour beyond the 4 h minimum notice at sending time (Mon 10:00), so
        # the first time is still bookable when the client clicks it.
        assert datetime.strptime(when[:22], "%a %d %b %Y, %H:%M") >= datetime(2026, 11, 30, 15)
    tom_slots = [when for when, _, name, _ in slots if name == "Tom Reed"]
    assert tom_slots and tom_slots[0] == "Mon 30 Nov 2026, 15:00 GMT (Europe/London)"
    assert "There are no free times" not in text
    # Every slot links to the confirm step for that therapist and time; the HTML agrees.
    links = [u for u in text.split() if "/confirm?" in u]
    assert len(links) == 6
    assert links[0] == (
        f"http://clinic.test/book/{clinic.service.id}/confirm?start=2026-12-01T09:00:00"
        f"%2B00:00&therapist={clinic.therapist.id}&chosen={clinic.therapist.id}")
    html = _html(prompts[0])
    assert html.count("/confirm?") == 6 and "Maya Patel</li>" not in html.split("<ul>")[0]
    assert "Tue 01 Dec 2026, 09:00 GMT (Europe/London)</a> with Maya Patel" in html
    # The link opens the confirm page of that slot for the logged-in client.
    login(client, clinic.client)
    page = client.get(path_of(links[0]))
    assert page.status_code == 200
    assert b"09:00" in page.data and b"Maya Patel" in page.data
    # Once only.
    assert _run(app, mailbox, clock, SEND + timedelta(days=1)) == []
    assert [r.status for r in rows("rebooking_prompt")] == ["sent"]


def test_prompt_written_days_ahead_is_refreshed_so_taken_slots_are_not_offered(
        app, db, clock, mailbox):
    clinic, tom = _two_therapists(app)
    booking = _session_with_window(app, clock, clinic)
    # The planner writes the prompt at once (due on the ideal date) ...
    run_job(plan_due_messages_job, app)
    written = rows("rebooking_prompt")
    assert [(r.status, r.due_at) for r in written] == [("pending", SEND)]
    # An intent: nothing is rendered until it goes.
    assert written[0].body_text is None and written[0].params["ideal"] == IDEAL.isoformat()
    # ... then someone else takes Maya's Tuesday 09:00 before it goes.
    other = make_user(app, email="other@example.com", name="Olu Other")
    clock.set(datetime(2026, 11, 27, 9, 0, tzinfo=UTC))
    make_booking(app, clinic, datetime(2026, 12, 1, 9, 0, tzinfo=UTC), client=other)
    prompts = _run(app, mailbox, clock, SEND)
    assert len(prompts) == 1
    text = _text(mailbox, prompts[0])
    slots = SLOT_LINE.findall(text)
    # Maya's taken Tuesday 09:00 is not offered (Tom's own Tuesday 09:00 may be).
    assert slots and all(not (when.startswith("Tue 01 Dec 2026, 09:") and name == "Maya Patel")
                         for when, _, name, _ in slots)
    # Maya has no other Tuesday time left, so Tom's times are offered instead.
    assert {name for _, _, name, _ in slots} == {"Tom Reed"}
    assert slots[0][0] == "Mon 30 Nov 2026, 15:00 GMT (Europe/London)"
    assert rows("rebooking_prompt")[0].key.startswith(f"booking:{booking.id}:rebooking-prompt")
    assert len(rows("rebooking_prompt")) == 1


def test_prompt_says_so_when_the_window_has_no_free_slot(app, db, clock, mailbox):
    clinic = _one_therapist(app)
    # The only therapist is away across the whole window.
    ext_db.session.add(HoursOverride(therapist_id=clinic.therapist.id, start_date=EARLIEST,
                                     end_date=LATEST, kind="off", reason="Holiday"))
    ext_db.session.commit()
    _session_with_window(app, clock, clinic)
    prompts = _run(app, mailbox, clock, SEND)
    assert len(prompts) == 1
    text = _text(mailbox, prompts[0])
    assert SLOT_LINE.findall(text) == [] and "/confirm?" not in text
    assert "There are no free times left in that window" in text
    assert f"http://clinic.test/book/{clinic.service.id}" in text
    assert "Monday 30 November 2026" in text and "Thursday 03 December 2026" in text
    html = _html(prompts[0])
    assert "no free times left" in html and "/confirm?" not in html


def test_no_prompt_while_a_future_booking_exists_and_one_after_it_is_cancelled(
        app, db, clock, mailbox):
    clinic, tom = _two_therapists(app)
    _session_with_window(app, clock, clinic)
    upcoming = make_booking(app, clinic, datetime(2026, 12, 2, 10, 0, tzinfo=UTC))
    assert _run(app, mailbox, clock, SEND) == []
    assert rows("rebooking_prompt") == []  # never even written
    # The client cancels it on Monday at noon: the prompt comes, with slots.
    clock.set(datetime(2026, 11, 30, 12, 0, tzinfo=UTC))
    cancel(app, upcoming)
    prompts = _run(app, mailbox, clock, clock.now())
    assert len(prompts) == 1
    slots = SLOT_LINE.findall(_text(mailbox, prompts[0]))
    assert slots and slots[0][0] == "Tue 01 Dec 2026, 09:00 GMT (Europe/London)"


def test_prompt_falls_back_to_the_booking_page_when_the_service_is_withdrawn(
        app, db, clock, mailbox):
    clinic, tom = _two_therapists(app)
    _session_with_window(app, clock, clinic)
    clinic.service.active = False
    ext_db.session.commit()
    prompts = _run(app, mailbox, clock, SEND)
    assert len(prompts) == 1
    text = _text(mailbox, prompts[0])
    assert "There are no free times left" in text and "http://clinic.test/book\n" in text


@pytest.mark.parametrize("clients", [1, 3])
def test_planner_statement_count_stays_small_per_prompt(app, db, clock, clients):
    clinic, tom = _two_therapists(app)
    for n in range(clients):
        person = make_user(app, email=f"c{n}@example.com", name=f"Client {n}")
        booking = make_booking(app, clinic, START + timedelta(hours=2 * n), client=person)
        clock.set(booking.end_at + timedelta(minutes=30))
        complete(app, booking)
        add_recommendation(app, booking, earliest=EARLIEST, ideal=IDEAL, latest=LATEST)
    engine = ext_db.engine
    count = [0]

    def counter(*args):
        count[0] += 1

    event.listen(engine, "before_cursor_execute", counter)
    try:
        result = run_job(plan_due_messages_job, app)
    finally:
        event.remove(engine, "before_cursor_execute", counter)
    assert result.prompts == clients
    assert len(rows("rebooking_prompt")) == clients
    # One slot search (two queries' worth, a handful of statements) per prompt, not per slot.
    # Measured: 30 for one prompt, 78 for three (about 24 each, two of them slot searches).
    assert count[0] <= 10 + 30 * clients, count[0]
