"""API accounts: sign-up and bearer tokens."""

from __future__ import annotations

from datetime import datetime

from flask import current_app
from flask import g
from pydantic import BaseModel
from pydantic import Field

from clinic_app.api import bp  # noqa: F401
from clinic_app.api.core import Email
from clinic_app.api.core import SingleLineText
from clinic_app.api.core import endpoint
from clinic_app.clock import utcnow as now
from clinic_app.errors import NotAuthenticated
from clinic_app.extensions import db
from clinic_app.extensions import limiter
from clinic_app.services import accounts
from clinic_app.throttle import authenticate_within_budget


class SignupIn(BaseModel):
    name: SingleLineText = Field(min_length=1, max_length=120)
    email: Email
    password: str = Field(min_length=1, max_length=256)
    phone: SingleLineText | None = Field(default=None, max_length=40)
    consent: bool = True
    hold_id: int | None = Field(default=None, ge=1, le=2**31 - 1,
                                description="A slot held with POST /holds: verifying the "
                                            "email while the hold lives books it")


class SignupOut(BaseModel):
    status: str = "verification_sent"
    message: str


class TokenIn(BaseModel):
    email: Email
    password: str = Field(min_length=1, max_length=256)


class TokenOut(BaseModel):
    token: str
    expires_at: datetime


def _ip_limit() -> str:
    return current_app.config["LOGIN_LIMIT_PER_IP"]


@endpoint("/auth/signup", "POST", summary="Create a client account", tag="auth",
          body=SignupIn, response=SignupOut, status=201, auth=False,
          errors=(404, 409, 422, 429))
@limiter.limit(_ip_limit)
def signup(body: SignupIn) -> SignupOut:
    """201 whether or not the email was already registered (no enumeration); 404/409 for an
    unknown or expired ``hold_id``."""
    accounts.signup(db.session, name=body.name, email=body.email, password=body.password,
                    phone=body.phone, consent=body.consent, hold_id=body.hold_id, now=now())
    db.session.commit()
    return SignupOut(message="If the address can receive mail, a verification link is on its "
                             "way. Verify, then create a token.")


@endpoint("/auth/tokens", "POST", summary="Log in: create a bearer token", tag="auth",
          body=TokenIn, response=TokenOut, status=201, auth=False, errors=(401, 422, 429))
def create_token(body: TokenIn) -> TokenOut:
    """Failed attempts spend the same per-account budget as the web log-in; 429 comes
    with ``Retry-After`` (the owner can ask for a sign-in link at ``/login/link``)."""
    user = authenticate_within_budget(db.session, body.email, body.password, now())
    raw, row = accounts.issue_api_token(db.session, user, now(),
                                        current_app.config["API_TOKEN_DAYS"])
    db.session.commit()
    return TokenOut(token=raw, expires_at=row.expires_at)


@endpoint("/auth/tokens/current", "DELETE", summary="Revoke the token used for this request",
          tag="auth", status=204, errors=(401,))
def revoke_token() -> tuple[dict, int]:
    token = g.api_token
    if token is None:
        raise NotAuthenticated("No token.")
    token.revoked_at = now()
    db.session.commit()
    return {}, 204
