"""Accounts: users with a known password, API tokens, a logged-in test client."""

from __future__ import annotations

from datetime import datetime
from functools import cache
from itertools import count
from typing import Any

from clinic_app.extensions import db
from clinic_app.models import User
from clinic_app.security import hash_password
from clinic_app.services.accounts import issue_api_token

PASSWORD = "correct-horse-battery"
_seq = count(1)


def next_number() -> int:
    """A number no factory has used yet in this run (for unique names and emails)."""
    return next(_seq)


@cache
def _password_hash() -> str:
    """``PASSWORD`` hashed once, inside the app (so with the cheap testing parameters)."""
    return hash_password(PASSWORD)


def now_of(app: Any) -> datetime:
    """The app's (frozen) clock reading."""
    return app.extensions["clock"].now()


def make_user(app: Any, *, role: str = "client", email: str | None = None,
              name: str | None = None, verified: bool = True, password_hash: str | None = "",
              **extra: Any) -> User:
    """A user with the password ``PASSWORD`` (``password_hash=None``: no password)."""
    n = next_number()
    user = User(
        email=email or f"user{n}@example.com",
        name=name or f"User {n}",
        role=role,
        password_hash=_password_hash() if password_hash == "" else password_hash,
        email_verified_at=now_of(app) if verified else None,
        consent_at=now_of(app),
        created_at=now_of(app),
        **extra,
    )
    db.session.add(user)
    db.session.commit()
    return user


def token_for(app: Any, user: User) -> dict[str, str]:
    """An ``Authorization`` header for ``user``."""
    raw, _ = issue_api_token(db.session, user, now_of(app), 30)
    db.session.commit()
    return {"Authorization": f"Bearer {raw}"}


def login(client: Any, user: User) -> None:
    """Log the test client in as ``user`` (the factories' password)."""
    client.post("/logout")
    response = client.post("/login", data={"email": user.email, "password": PASSWORD})
    assert response.status_code == 302, response.data[:500]
