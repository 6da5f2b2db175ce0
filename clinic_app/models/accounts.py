"""Accounts: users with a role, log-in sessions, one-time tokens (verify, reset, invite,
sign-in), API tokens."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import Boolean
from sqlalchemy import ForeignKey
from sqlalchemy import Integer
from sqlalchemy import String
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column
from sqlalchemy.orm import relationship

from clinic_app.db import Base
from clinic_app.db import UTCDateTime


class Role(enum.StrEnum):
    CLIENT = "client"
    THERAPIST = "therapist"
    ADMIN = "admin"


class User(Base):
    """A person who logs in: a client, a therapist or an admin."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    # Stored lower-cased. None for a client created at the desk with a phone number only
    # (issue 11): such a client gets no email until an address is added.
    email: Mapped[str | None] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    phone: Mapped[str | None] = mapped_column(String(40))
    role: Mapped[str] = mapped_column(String(16), default=Role.CLIENT.value)
    password_hash: Mapped[str | None] = mapped_column(String(255))  # None until set (invites)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    email_verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    consent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Bumped on password change, "log out everywhere" and deactivation: every
    # session and remember cookie carries the version it was issued with.
    session_version: Mapped[int] = mapped_column(Integer, default=1)
    # Non-essential messages (rebooking prompts, recalls) can be switched off.
    wants_prompts: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    anonymised_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    therapist: Mapped[Therapist | None] = relationship(  # noqa: F821
        back_populates="user", uselist=False
    )

    # Flask-Login protocol, written out so is_active reflects the column.
    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def is_anonymous(self) -> bool:
        return False

    @property
    def login_token(self) -> str | None:
        """The secret of the log-in session this request runs in (not a column): set
        when a session is opened or loaded, carried by the Flask session and the
        remember cookie through get_id()."""
        return getattr(self, "_login_token", None)

    @login_token.setter
    def login_token(self, raw: str | None) -> None:
        self._login_token = raw

    def get_id(self) -> str:
        if not self.login_token:
            raise RuntimeError("open a log-in session (clinic_app.auth.log_in) first")
        return f"{self.id}:{self.login_token}"

    @property
    def is_verified(self) -> bool:
        return self.email_verified_at is not None

    def has_role(self, *roles: str) -> bool:
        return self.role in roles


class OneTimeToken(Base):
    """A single-use secret sent by email. Only its SHA-256 is stored."""

    __tablename__ = "one_time_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    purpose: Mapped[str] = mapped_column(String(24))  # verify, reset, invite, change_email
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    payload: Mapped[str | None] = mapped_column(String(254))  # the new address for change_email
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    user: Mapped[User] = relationship()


class ApiToken(Base):
    """A bearer token for the JSON API. Only its SHA-256 is stored."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    session_version: Mapped[int] = mapped_column(Integer, default=1)

    user: Mapped[User] = relationship()


class LoginSession(Base):
    """One log-in on one device: the session and remember cookies carry its secret,
    only the SHA-256 is stored. Logging out deletes the row, so a copied cookie stops
    working at once; bumping the user's ``session_version`` ends every row issued before."""

    __tablename__ = "login_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    session_version: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())

    user: Mapped[User] = relationship()
