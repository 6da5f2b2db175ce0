"""The waitlist journey of issue 13, as the clients would live it, against a live server with
the worker's jobs and a real SMTP server (aiosmtpd): B cancels, A (whose window contains the
slot) gets the offer email, C cannot take the held slot, A accepts from the email's link
without logging in and gets the confirmation."""

from __future__ import annotations

import contextlib
import http.cookiejar
import re
import urllib.error
import urllib.parse
import urllib.request
from datetime import timedelta

import pytest
from sqlalchemy import select

from clinic_app.models import Booking
from clinic_app.models import WaitlistOffer
from clinic_app.services.accounts import issue_api_token
from clinic_app.worker import dispatch_outbox_job
from clinic_app.worker import waitlist_offers_job
from tests.factories import make_user
from tests.factories import now_of
from tests.factories.notify import run_job
from tests.factories.notify import start_sink
from tests.factories.waitlist import TUE_10
from tests.factories.waitlist import make_scene
from tests.integration.test_concurrency import Api
from tests.live_server import live_server_factory  # noqa: F401  (fixture)


@pytest.fixture
def smtp_sink():
    controller, sink = start_sink()
    yield controller, sink
    with contextlib.suppress(RuntimeError, AssertionError):
        controller.stop()


@pytest.fixture
def app_config(app_config, smtp_sink):
    controller, _ = smtp_sink
    # Real mail to a real SMTP server, and CSRF on as in production.
    app_config.update({"MAIL_BACKEND": "smtp", "SMTP_HOST": "127.0.0.1",
                       "SMTP_PORT": controller.port, "SMTP_TLS": "none",
                       "WTF_CSRF_ENABLED": True})
    return app_config


def _token(app, db, user) -> str:
    raw, _ = issue_api_token(db.session, user, now_of(app), days=30)
    db.session.commit()
    return raw


class Browser:
    """A visitor without an account session: cookies kept (CSRF), redirects followed."""

    def __init__(self) -> None:
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))

    def get(self, url: str) -> tuple[int, str, str]:
        return self._open(urllib.request.Request(url))

    def post(self, url: str, data: dict[str, str]) -> tuple[int, str, str]:
        return self._open(urllib.request.Request(
            url, data=urllib.parse.urlencode(data).encode(), method="POST"))

    def _open(self, request: urllib.request.Request) -> tuple[int, str, str]:
        try:
            with self.opener.open(request, timeout=60) as response:
                return response.status, response.geturl(), response.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.geturl(), exc.read().decode()


def _csrf(page: str) -> str:
    found = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page)
    assert found, "no CSRF token on the page"
    return found.group(1)


def _body(message) -> str:
    return message.get_body(preferencelist=("plain",)).get_content()


@pytest.mark.real_db
def test_cancel_offer_refuse_accept_from_the_email(app, db, smtp_sink, live_server_factory):  # noqa: F811
    _, sink = smtp_sink
    scene = make_scene(app)  # Bob has Tue 10:00; Ada, Eve and Fay wait (Ada is due)
    carol = make_user(app, name="Carol", email="carol@example.com")
    bob_token, carol_token = _token(app, db, scene.b), _token(app, db, carol)
    booking_id, service_id = scene.booking.id, scene.clinic.service.id
    therapist_id, hold_minutes = scene.clinic.t1.id, 30
    server = live_server_factory(app)
    app.config["BASE_URL"] = server.base_url  # the links in the emails point at this server
    api = Api(server)
    clock = app.extensions["clock"]

    # B cancels (over HTTP); the worker's next run offers the slot; the outbox sends it.
    status, cancelled = api.call("POST", f"/bookings/{booking_id}/cancel", bob_token, {})
    assert status == 200 and cancelled["status"] == "cancelled"
    clock.advance(timedelta(seconds=15))  # the job's interval
    made = run_job(waitlist_offers_job, app)
    assert len(made.offers) == 1 and made.failures == []
    assert run_job(dispatch_outbox_job, app).failed == 0
    [offer_mail] = [m for m in sink.to("ada@example.com")
                    if str(m["Subject"]).startswith("A time has come free")]
    assert not [m for addr in ("eve@example.com", "fay@example.com")
                for m in sink.to(addr) if "come free" in str(m["Subject"])]
    text = _body(offer_mail)
    assert "Tue 24 Nov 2026, 10:00 GMT" in text
    held_until = (clock.now() + timedelta(minutes=hold_minutes)).strftime("%H:%M")
    assert f"held for you until {held_until} GMT" in text
    accept = re.search(r"^Accept \(book it\): (\S+)", text, flags=re.M).group(1)
    assert accept.startswith(server.base_url + "/waitlist/offers/")

    # C cannot take the held slot, with or without naming the therapist.
    body = {"service_id": service_id, "start": TUE_10.isoformat(), "therapist_id": therapist_id}
    status, refused = api.call("POST", "/bookings", carol_token, body)
    assert status == 409 and refused["error"]["code"] == "slot_taken"
    status, _ = api.call("POST", "/bookings", carol_token, {**body, "therapist_id": None})
    assert status == 409

    # A follows the email's link without logging in: the page, then its Accept button.
    clock.advance(timedelta(minutes=5))
    ada = Browser()
    status, _, page = ada.get(accept)
    assert status == 200 and "A time has come free for you" in page
    csrf = _csrf(page)
    status, landed, page = ada.post(accept, {"csrf_token": csrf})
    assert status == 200 and "/b/" in landed, (status, landed)
    assert "You&#39;re booked" in page and "Tuesday 24 November 2026, 10:00" in page

    # The confirmation reaches A; exactly one booking holds the slot, and it is A's.
    assert run_job(dispatch_outbox_job, app).failed == 0
    assert [m for m in sink.to("ada@example.com")
            if str(m["Subject"]).startswith("Booking confirmed")]
    db.session.rollback()
    active = db.session.scalars(select(Booking).where(
        Booking.start_at == TUE_10, Booking.status.in_(("booked", "pending")))).all()
    assert [(b.client_id, b.therapist_id) for b in active] == [(scene.a.id, therapist_id)]
    offer = db.session.scalar(select(WaitlistOffer))
    assert offer.status == "accepted" and offer.booking_id == active[0].id
    db.session.rollback()  # SQLite: our read must not hold the lock the server needs
    # The link's job is done: pressing Accept again books nothing more.
    status, _, page = ada.get(accept)
    assert status == 410 and "You accepted this time" in page
    status, _, page = ada.post(accept, {"csrf_token": csrf})
    assert status == 409 and "already answered" in page
    # One offer email in all: nobody else was asked for this slot.
    assert sum("come free" in str(m["Subject"]) for m in sink.messages) == 1
