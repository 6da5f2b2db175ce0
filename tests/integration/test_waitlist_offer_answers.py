"""Answering a waitlist offer (issue 13.2, 13.5): the email with its signed Accept and
Decline links (no log-in), the offer page, the client's waitlist page and the fixed API."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from clinic_app.models import Booking
from clinic_app.models import OutboxMessage
from clinic_app.models import WaitlistOffer
from clinic_app.services import waitlist_offers as offers
from clinic_app.services.settings import get_settings
from tests.api_contract import assert_documented
from tests.conftest import path_of
from tests.factories import make_booking
from tests.factories.accounts import login
from tests.factories.accounts import token_for
from tests.factories.schedule import local
from tests.factories.waitlist import TUE_10
from tests.factories.waitlist import cancel_and_offer
from tests.factories.waitlist import make_scene


@pytest.fixture
def scene(app):
    return make_scene(app)


@pytest.fixture
def offer(app, scene):
    return cancel_and_offer(app, scene)


def offer_links(mailbox, to: str) -> dict[str, str]:
    [message] = [m for m in mailbox.deliver() if to in str(m["To"])
                 and str(m["Subject"]).startswith("A time has come free")]
    return dict(re.findall(r"^(Accept|Decline) \([^)]*\):\s+(\S+)", mailbox.text(message),
                           flags=re.M))


def state(db, offer) -> str:
    db.session.expire_all()
    return db.session.get(WaitlistOffer, offer.id).status


# --- the email ---------------------------------------------------------------------------------


def test_the_offer_email_says_what_when_and_until_when(app, db, scene, offer, mailbox):
    [message] = [m for m in mailbox.deliver() if "ada@example.com" in str(m["To"])]
    assert message["Subject"] == "A time has come free: Tue 24 Nov 2026, 10:00 GMT"
    text = mailbox.text(message)
    assert "Hello Ada," in text and scene.clinic.service.name in text
    assert "Tue 24 Nov 2026, 10:00 GMT (Europe/London), until 11:00 GMT" in text
    assert scene.clinic.t1.user.name in text
    # The clock is Mon 08:03 GMT (three joins a minute apart); held for 30 minutes.
    assert "held for you until 08:33 GMT." in text
    html = message.get_body(preferencelist=("html",)).get_content()
    assert ">Accept</a>" in html and ">Decline</a>" in html and "08:33 GMT" in html
    links = offer_links(mailbox, "ada@example.com")
    assert set(links) == {"Accept", "Decline"} and links["Accept"] != links["Decline"]
    assert all(u.startswith("http://clinic.test/waitlist/offers/") for u in links.values())
    # Nobody else was written to about this slot.
    assert [str(m["To"]) for m in mailbox.messages()
            if str(m["Subject"]).startswith("A time")] == ["ada@example.com"]


def test_an_offer_answered_before_sending_is_never_sent(app, db, scene, offer, mailbox):
    offers.decline(db.session, offer, client=scene.a, now=app.extensions["clock"].now())
    db.session.commit()
    assert not [m for m in mailbox.deliver() if "ada@example.com" in str(m["To"])]
    row = db.session.scalar(select(OutboxMessage).where(OutboxMessage.kind == "waitlist_offer"))
    assert (row.status, row.last_error) == ("retired", "offer declined")


def test_an_offer_whose_hold_went_is_never_sent(app, db, scene, offer, mailbox, clock):
    clock.advance(timedelta(minutes=31))
    assert not [m for m in mailbox.deliver() if "ada@example.com" in str(m["To"])]
    row = db.session.scalar(select(OutboxMessage).where(OutboxMessage.kind == "waitlist_offer"))
    assert (row.status, row.last_error) == ("retired", "offer expired")


# --- the links, without logging in -------------------------------------------------------------


def test_accept_from_the_email_without_logging_in(app, client, db, scene, offer, mailbox):
    links = offer_links(mailbox, "ada@example.com")
    page = client.get(path_of(links["Accept"]))
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "A time has come free for you" in html
    assert "Tuesday 24 November 2026, 10:00" in html and "until <strong>08:33</strong>" in html
    assert "Accept: book it" in html and "Decline: pass it on" in html
    # Opening the link (a mail scanner does) changes nothing.
    assert state(db, offer) == "open"
    response = client.post(path_of(links["Accept"]))
    assert response.status_code == 302 and "/b/" in response.headers["Location"]
    booking = db.session.get(Booking, offer.hold_id)
    assert (booking.status, booking.client_id, booking.start_at) == ("booked", scene.a.id, TUE_10)
    assert state(db, offer) == "accepted"
    shown = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "You&#39;re booked" in shown and "Tuesday 24 November 2026, 10:00" in shown
    # The confirmation email goes out, with its own links.
    assert any(str(m["Subject"]).startswith("Booking confirmed") for m in
               mailbox.deliver() if "ada@example.com" in str(m["To"]))
    # The link now says it was accepted and points at the appointment; a second press books
    # nothing more.
    again = client.get(path_of(links["Accept"]))
    assert again.status_code == 410 and "You accepted this time" in again.get_data(as_text=True)
    assert client.post(path_of(links["Accept"])).status_code == 409
    assert client.post(path_of(links["Decline"])).status_code == 409
    assert db.session.get(Booking, offer.hold_id).status == "booked"


def test_decline_from_the_email_passes_it_on(app, client, db, scene, offer, mailbox):
    links = offer_links(mailbox, "ada@example.com")
    response = client.post(path_of(links["Decline"]))
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and "You passed this time on" in html
    assert state(db, offer) == "declined"
    assert db.session.get(Booking, offer.hold_id) is None or db.session.get(
        Booking, offer.hold_id).client_id != scene.a.id
    result = offers.run_round(db.session, app.extensions["clock"].now())
    db.session.commit()
    [second] = [db.session.get(WaitlistOffer, i) for i in result.offers]
    assert second.client_id == scene.e.id


def test_forged_and_altered_links_do_nothing(app, client, db, scene, offer, mailbox):
    links = offer_links(mailbox, "ada@example.com")
    accept = path_of(links["Accept"])
    for bad in ("/waitlist/offers/nonsense", accept[:-2] + ("AA" if accept[-2:] != "AA" else "BB"),
                "/waitlist/offers/" + "x" * 300):
        assert client.get(bad).status_code == 404, bad
        response = client.post(bad)
        assert response.status_code == 404
        assert "This link does not work" in response.get_data(as_text=True)
    # A token signed for another purpose or another secret is refused too.
    from itsdangerous import URLSafeSerializer

    other = URLSafeSerializer("another-secret", salt="waitlist-offer-v1:accept").dumps(
        [offer.id, scene.a.id])
    assert client.post(f"/waitlist/offers/{other}").status_code == 404
    wrong_client = URLSafeSerializer(app.config["SECRET_KEY"],
                                     salt="waitlist-offer-v1:accept").dumps([offer.id, scene.e.id])
    assert client.post(f"/waitlist/offers/{wrong_client}").status_code == 404
    assert state(db, offer) == "open"


def test_an_expired_offer_link_says_so_and_links_to_the_picker(app, client, db, scene, offer,
                                                               mailbox, clock):
    links = offer_links(mailbox, "ada@example.com")
    clock.advance(timedelta(minutes=30))
    page = client.get(path_of(links["Accept"]))
    html = page.get_data(as_text=True)
    assert page.status_code == 410 and "This offer has expired" in html
    assert (f'/book/{scene.clinic.service.id}/times?therapist={scene.clinic.t1.id}'
            f'&amp;day=2026-11-24') in html
    response = client.post(path_of(links["Accept"]))
    assert response.status_code == 409 and "expired" in response.get_data(as_text=True)
    assert db.session.get(Booking, offer.hold_id) is None or db.session.get(
        Booking, offer.hold_id).status == "held"


def test_the_form_needs_its_csrf_token(app, client, db, scene, offer, mailbox):
    app.config["WTF_CSRF_ENABLED"] = True
    try:
        links = offer_links(mailbox, "ada@example.com")
        response = client.post(path_of(links["Accept"]))
        assert response.status_code == 400
        assert state(db, offer) == "open"
        page = client.get(path_of(links["Accept"])).get_data(as_text=True)
        token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
        response = client.post(path_of(links["Accept"]), data={"csrf_token": token})
        assert response.status_code == 302 and state(db, offer) == "accepted"
    finally:
        app.config["WTF_CSRF_ENABLED"] = False


# --- the logged-in client's waitlist page ------------------------------------------------------


def test_the_waitlist_page_shows_open_offers_with_both_buttons(app, client, db, scene, offer):
    login(client, scene.a)
    html = client.get("/waitlist").get_data(as_text=True)
    assert "Times held for you" in html and "Tuesday 24 November, 10:00" in html
    assert f"/waitlist/offers/{offer.id}/accept" in html
    assert f"/waitlist/offers/{offer.id}/decline" in html
    response = client.post(f"/waitlist/offers/{offer.id}/accept")
    assert response.status_code == 302
    assert response.headers["Location"] == f"/appointments/{offer.hold_id}/done"
    assert state(db, offer) == "accepted"
    assert "Times held for you" not in client.get("/waitlist").get_data(as_text=True)


def test_decline_on_the_waitlist_page(app, client, db, scene, offer):
    login(client, scene.a)
    response = client.post(f"/waitlist/offers/{offer.id}/decline")
    assert response.status_code == 302 and response.headers["Location"] == "/waitlist"
    assert state(db, offer) == "declined"


def test_nobody_else_answers_an_offer_on_the_pages(app, client, db, scene, offer):
    login(client, scene.e)
    assert "Times held for you" not in client.get("/waitlist").get_data(as_text=True)
    assert client.post(f"/waitlist/offers/{offer.id}/accept").status_code == 404
    assert client.post(f"/waitlist/offers/{offer.id}/decline").status_code == 404
    assert client.post("/waitlist/offers/99999999999/accept").status_code == 404
    login(client, scene.clinic.t1.user)
    assert client.post(f"/waitlist/offers/{offer.id}/accept").status_code == 403
    client.post("/logout")
    assert client.post(f"/waitlist/offers/{offer.id}/accept").status_code == 302  # to log in
    assert state(db, offer) == "open"


# --- the API -----------------------------------------------------------------------------------


def test_api_lists_accepts_and_refuses_a_second_answer(app, client, db, scene, offer, clock):
    auth = token_for(app, scene.a)
    listed = assert_documented(client.get("/api/v1/waitlist/offers", headers=auth), "GET",
                               "/waitlist/offers")
    assert listed == {"offers": [{
        "id": offer.id, "start": "2026-11-24T10:00:00+00:00", "end": "2026-11-24T11:00:00+00:00",
        "therapist_id": scene.clinic.t1.id, "service_id": scene.clinic.service.id,
        "expires_at": (clock.now() + timedelta(minutes=30)).isoformat()}]}
    booking = assert_documented(client.post(f"/api/v1/waitlist/offers/{offer.id}/accept",
                                            headers=auth),
                                "POST", "/waitlist/offers/<int:offer_id>/accept")
    # The same JSON as POST /bookings answers.
    assert booking["id"] == offer.hold_id and booking["client_id"] == scene.a.id
    assert booking["status"] == "booked" and booking["start"] == "2026-11-24T10:00:00+00:00"
    shown = client.get(f"/api/v1/bookings/{booking['id']}", headers=auth).get_json()
    assert shown == booking
    again = client.post(f"/api/v1/waitlist/offers/{offer.id}/accept", headers=auth)
    assert again.status_code == 409 and again.get_json()["error"]["code"] == "offer_expired"
    declined = client.post(f"/api/v1/waitlist/offers/{offer.id}/decline", headers=auth)
    assert declined.status_code == 409 and declined.get_json()["error"]["code"] == "offer_expired"
    assert client.get("/api/v1/waitlist/offers", headers=auth).get_json() == {"offers": []}


def test_api_decline_is_204_and_the_next_match_is_offered(app, client, db, scene, offer):
    auth = token_for(app, scene.a)
    response = client.post(f"/api/v1/waitlist/offers/{offer.id}/decline", headers=auth)
    assert response.status_code == 204 and response.data == b""
    offers.run_round(db.session, app.extensions["clock"].now())
    db.session.commit()
    eve = client.get("/api/v1/waitlist/offers", headers=token_for(app, scene.e)).get_json()
    assert [o["start"] for o in eve["offers"]] == ["2026-11-24T10:00:00+00:00"]


def test_api_others_get_404_and_strangers_401(app, client, db, scene, offer):
    eve = token_for(app, scene.e)
    assert client.get("/api/v1/waitlist/offers", headers=eve).get_json() == {"offers": []}
    for path in (f"/api/v1/waitlist/offers/{offer.id}/accept",
                 f"/api/v1/waitlist/offers/{offer.id}/decline",
                 "/api/v1/waitlist/offers/999999/accept",
                 "/api/v1/waitlist/offers/2147483648/accept"):
        response = client.post(path, headers=eve)
        assert response.status_code == 404 and response.get_json()["error"]["code"] == "not_found"
    for path in (f"/api/v1/waitlist/offers/{offer.id}/accept",
                 f"/api/v1/waitlist/offers/{offer.id}/decline"):
        assert client.post(path).status_code == 401
    assert client.get("/api/v1/waitlist/offers").status_code == 401
    assert state(db, offer) == "open"


def test_api_an_expired_offer_is_409(app, client, db, scene, offer, clock):
    clock.advance(timedelta(minutes=30))
    response = client.post(f"/api/v1/waitlist/offers/{offer.id}/accept",
                           headers=token_for(app, scene.a))
    assert response.status_code == 409 and response.get_json()["error"]["code"] == "offer_expired"
    assert db.session.scalar(select(Booking).where(Booking.client_id == scene.a.id,
                                                   Booking.start_at == TUE_10)) is None


def test_api_an_accept_refused_by_the_booking_rules_is_422(app, client, db, scene, offer):
    get_settings(db.session).max_upcoming_per_client = 1
    make_booking(app, scene.clinic, local(2026, 11, 26, 10), client=scene.a)
    response = client.post(f"/api/v1/waitlist/offers/{offer.id}/accept",
                           headers=token_for(app, scene.a))
    assert response.status_code == 422 and response.get_json()["error"]["code"] == "over_cap"
    assert state(db, offer) == "open"


def test_while_an_offer_lives_nobody_else_books_the_slot(app, client, db, scene, offer, clock):
    body = {"service_id": scene.clinic.service.id, "start": TUE_10.isoformat(),
            "therapist_id": scene.clinic.t1.id}
    taken = client.post("/api/v1/bookings", json=body, headers=token_for(app, scene.b))
    assert taken.status_code == 409 and taken.get_json()["error"]["code"] == "slot_taken"
    # Not even without naming the therapist, and not as a hold for a visitor.
    assert client.post("/api/v1/bookings", json={**body, "therapist_id": None},
                       headers=token_for(app, scene.e)).status_code == 409
    assert client.post("/api/v1/holds", json=body).status_code == 409
    # Once it expires unanswered, the slot can be booked by anyone (the job passes it on
    # only if nobody took it meanwhile).
    clock.advance(timedelta(minutes=30))
    booked = client.post("/api/v1/bookings", json=body, headers=token_for(app, scene.b))
    assert booked.status_code == 201


def test_the_offer_endpoints_are_in_the_openapi_document(client):
    paths = client.get("/api/v1/openapi.json").get_json()["paths"]
    assert "get" in paths["/api/v1/waitlist/offers"]
    accept = paths["/api/v1/waitlist/offers/{offer_id}/accept"]["post"]
    assert set(accept["responses"]) >= {"201", "404", "409"}
    decline = paths["/api/v1/waitlist/offers/{offer_id}/decline"]["post"]
    assert set(decline["responses"]) >= {"204", "404", "409"}
