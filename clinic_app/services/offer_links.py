"""Signed links in a waitlist offer email (issue 13.2): accept or decline the offer without
logging in.

A token names the offer and its client, signed with the app's secret (itsdangerous) and a
salt per purpose, so an accept link cannot decline and the other way round. Nothing is
stored: the offer's own state decides whether the link still does anything (an expired or
answered offer's link only says so). Opening a link (GET) never changes anything, because
mail scanners follow links; the page's buttons POST.
"""

from __future__ import annotations

from itsdangerous import BadSignature
from itsdangerous import URLSafeSerializer
from sqlalchemy.orm import Session

from clinic_app.errors import NotFound
from clinic_app.models.booking import MAX_ID
from clinic_app.models.waitlist import WaitlistOffer
from clinic_app.services.signed_tokens import purpose_serializer

PURPOSES = ("accept", "decline")
_SALT = "waitlist-offer-v1:"


def _serializer(secret: str, purpose: str) -> URLSafeSerializer:
    return purpose_serializer(secret, _SALT, PURPOSES, purpose)


def make_token(secret: str, offer: WaitlistOffer, purpose: str) -> str:
    """The token for ``purpose`` ("accept" or "decline") on ``offer``."""
    return str(_serializer(secret, purpose).dumps([offer.id, offer.client_id]))


def offer_for_token(session: Session, secret: str, token: str) -> tuple[WaitlistOffer, str]:
    """The offer a link names and the link's purpose; NotFound for a forged, altered or
    unknown token (one answer for every reason)."""
    for purpose in PURPOSES:
        try:
            offer_id, client_id = _serializer(secret, purpose).loads(token)
        except (BadSignature, ValueError, TypeError):
            continue
        if isinstance(offer_id, int) and 0 < offer_id <= MAX_ID:
            offer = session.get(WaitlistOffer, offer_id)
            if offer is not None and offer.client_id == client_id:
                return offer, purpose
        break
    raise NotFound("This link does not work. The waitlist email may be incomplete: copy the "
                   "whole link, or log in and open your waitlist.")
