"""Clients at the desk: search the directory, create a client from a phone call, a client's
page (contact, bookings, flags, recommendation).

Access: an admin sees every client; a therapist only the clients they have (had) a booking
with, the same rule as the health data (``services.care.can_see_health``); anyone else gets
NotFound. A client created here has consented to the privacy notice at the desk
(``consent_at`` is the creation time) and can be booked at once; an invitation to set a
password is optional and needs an email address.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import exists
from sqlalchemy import func
from sqlalchemy import or_
from sqlalchemy import select
from sqlalchemy.orm import Session

from clinic_app.errors import Conflict
from clinic_app.errors import NotFound
from clinic_app.errors import ValidationFailed
from clinic_app.models.accounts import Role
from clinic_app.models.accounts import User
from clinic_app.models.booking import Booking
from clinic_app.models.care import Intake
from clinic_app.models.care import Recommendation
from clinic_app.security import token_hash
from clinic_app.services import care
from clinic_app.services.accounts import find_user
from clinic_app.services.accounts import issue_token
from clinic_app.services.accounts import normalise_email
from clinic_app.services.audit import record_read
from clinic_app.services.booking import MAX_ID
from clinic_app.services.booking import therapist_for_user
from clinic_app.services.notify import events as notify_events

__all__ = [
    "ClientPage",
    "client_page",
    "create_client",
    "get_client_for",
    "normalise_phone",
    "search_clients",
]

SEARCH_LIMIT = 50
NAME_MAX = 120
PHONE_MAX = 40
_PHONE_CHARS = re.compile(r"^\+?[0-9 ()./-]{6,40}$")


def normalise_phone(raw: str | None) -> str | None:
    """A phone number as typed, trimmed; None when empty; ValidationFailed when not a number."""
    value = " ".join((raw or "").split())
    if not value:
        return None
    if not _PHONE_CHARS.match(value) or sum(c.isdigit() for c in value) < 6:
        raise ValidationFailed("Enter a phone number (digits, spaces, + - ( ) allowed).",
                               fields={"phone": "Not a phone number."})
    return value


def _digits(text: str) -> str:
    return "".join(c for c in text if c.isdigit())


def _visible_clients(session: Session, viewer: User) -> object:
    """The WHERE clause of the clients ``viewer`` may look up (NotFound for clients)."""
    base = (User.role == Role.CLIENT.value) & User.anonymised_at.is_(None)
    if viewer.role == Role.ADMIN.value:
        return base
    if viewer.role == Role.THERAPIST.value:
        therapist = therapist_for_user(session, viewer)
        tid = therapist.id if therapist is not None else -1
        return base & exists().where(Booking.client_id == User.id, Booking.therapist_id == tid)
    raise NotFound("Not found.")


def search_clients(session: Session, viewer: User, query: str = "", *,
                   limit: int = SEARCH_LIMIT) -> list[User]:
    """Clients ``viewer`` may see whose name, email or phone contains ``query`` (all when
    empty), by name, at most ``limit``. A phone number matches whatever its spacing
    (``07700900123`` finds ``07700 900123``): spaces, dashes and ``+`` are ignored."""
    stmt = select(User).where(_visible_clients(session, viewer))  # type: ignore[arg-type]
    text = " ".join((query or "").split()).lower()
    if text:
        like = f"%{text}%"
        conditions = [func.lower(User.name).like(like), func.lower(User.email).like(like),
                      func.lower(User.phone).like(like)]
        digits = _digits(text)
        if len(digits) >= 3:
            # A number typed with other spacing than stored: compare the digits alone.
            stripped = func.replace(func.replace(func.replace(User.phone, " ", ""), "-", ""),
                                    "+", "")
            conditions.append(stripped.like(f"%{digits}%"))
        stmt = stmt.where(or_(*conditions))
    return list(session.scalars(stmt.order_by(func.lower(User.name), User.id).limit(limit)))


def create_client(session: Session, *, actor: User, name: str, email: str | None,
                  phone: str | None, now: datetime, invite: bool = False) -> User:
    """An admin creates a client with a name and an email and/or a phone number.

    Consent to the privacy notice is recorded as given at the desk (now). ``invite`` emails a
    link to set a password (needs an email). Raises NotFound (not an admin), ValidationFailed
    (``validation_failed`` with fields) or Conflict ``email_taken`` (409).
    """
    if actor.role != Role.ADMIN.value:
        raise NotFound("Not found.")
    errors: dict[str, str] = {}
    clean_name = " ".join((name or "").split())
    if not clean_name:
        errors["name"] = "Enter the client's name."
    elif len(clean_name) > NAME_MAX:
        errors["name"] = f"At most {NAME_MAX} characters."
    address: str | None = None
    if (email or "").strip():
        try:
            address = normalise_email(email or "")
        except ValidationFailed as exc:
            errors.update(exc.fields)
    clean_phone: str | None = None
    try:
        clean_phone = normalise_phone(phone)
    except ValidationFailed as exc:
        errors.update(exc.fields)
    if address is None and clean_phone is None and "email" not in errors \
            and "phone" not in errors:
        errors["email"] = "Give an email address or a phone number (or both)."
    if invite and address is None and "email" not in errors:
        errors["invite"] = "An invitation needs an email address."
    if errors:
        raise ValidationFailed("Some fields are missing or invalid.", fields=errors)
    if address is not None and find_user(session, address) is not None:
        raise Conflict("An account with this email already exists.", code="email_taken",
                       fields={"email": "An account with this email already exists."})
    client = User(email=address, name=clean_name, phone=clean_phone, role=Role.CLIENT.value,
                  password_hash=None, consent_at=now, created_at=now, is_active=True,
                  session_version=1, wants_prompts=True)
    session.add(client)
    session.flush()
    if invite:
        send_client_invitation(session, client, now)
    return client


def send_client_invitation(session: Session, client: User, now: datetime) -> None:
    """Email a single-use link to set a password (the one invite token and outbox path)."""
    if not client.email:
        raise ValidationFailed("An invitation needs an email address.",
                               fields={"invite": "An invitation needs an email address."})
    raw = issue_token(session, client, "invite", now)
    session.flush()
    notify_events.account_email(session, client, "client_invite",
                                f"user:{client.id}:invite:{token_hash(raw)[:16]}", now, token=raw)


def get_client_for(session: Session, client_id: int, viewer: User) -> User:
    """One client ``viewer`` may see (admin: any; therapist: their own), else NotFound."""
    client = session.get(User, client_id) if 0 < client_id <= MAX_ID else None
    if client is None or client.role != Role.CLIENT.value or client.anonymised_at is not None:
        raise NotFound("There is no such client.")
    if viewer.role == Role.ADMIN.value:
        return client
    if viewer.role == Role.THERAPIST.value and care.can_see_health(session, viewer, client.id):
        return client
    raise NotFound("There is no such client.")


@dataclass
class ClientPage:
    client: User
    upcoming: list[Booking]
    past: list[Booking]
    flags: list[str]
    recommendation: Recommendation | None


def client_page(session: Session, client_id: int, viewer: User, now: datetime) -> ClientPage:
    """Contact, upcoming and past bookings, intake flags and the current recommendation.

    Flags and the recommendation are health data: the read is audited.
    """
    client = get_client_for(session, client_id, viewer)
    bookings = list(session.scalars(
        select(Booking).where(Booking.client_id == client.id).order_by(Booking.start_at)))
    upcoming = [b for b in bookings if b.start_at >= now and b.status in ("booked", "pending")]
    past = [b for b in reversed(bookings) if b not in upcoming]
    intake = session.scalar(select(Intake).where(Intake.client_id == client.id))
    flags = [care.FLAG_LABELS.get(f, f) for f in (intake.flags or [])] if intake else []
    if intake is not None:
        record_read(session, viewer, "read:intake_flags", client.id, "intake", intake.id, now)
    recommendation = care.current_recommendation(session, client)
    if recommendation is not None:
        record_read(session, viewer, "read:recommendation", client.id, "recommendation",
                    recommendation.id, now)
    return ClientPage(client, upcoming, past, flags, recommendation)
