"""Log-in throttles that cannot lock the owner out.

One budget of failed log-ins per account, shared by the web log-in and the API's token
endpoint, and one per client address (``CLINIC_LOGIN_LIMIT_PER_ACCOUNT`` /
``CLINIC_LOGIN_LIMIT_PER_IP``). Each attempt reserves a unit with one atomic increment in
Flask-Limiter's storage (memory or Redis, shared by every worker) *before* the password
is checked, so forty parallel guesses get exactly the budget and no more; an attempt whose
password was right gives its unit back. A spent budget answers 429 with ``Retry-After``,
and the owner can still get in with an emailed one-time sign-in link.

Behind a reverse proxy ``CLINIC_TRUSTED_PROXIES`` (the number of proxies in front) makes
werkzeug's ``ProxyFix`` take the client's address from ``X-Forwarded-For``, so the per-IP
budget (and Flask-Limiter's limits) key on the client, not on the proxy.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from datetime import datetime

from flask import Flask
from flask import current_app
from flask import request
from limits import RateLimitItem
from limits import parse
from sqlalchemy.orm import Session
from werkzeug.middleware.proxy_fix import ProxyFix

from clinic_app.errors import NotAuthenticated
from clinic_app.errors import RateLimited
from clinic_app.extensions import limiter
from clinic_app.extensions import set_retry_after
from clinic_app.models.accounts import User
from clinic_app.services import accounts

# Addresses are at most 254 characters; anything longer is cut so a key stays small.
_MAX_IDENTIFIER = 254


class LoginThrottled(RateLimited):
    """429: this account's (or this address's) budget of failed log-ins is spent."""

    def __init__(self, retry_after: int, *, scope: str) -> None:
        if scope == "account":
            message = (f"Too many failed log-ins for this account. Try again in "
                       f"{_minutes(retry_after)}, or ask for a one-time sign-in link by email.")
        else:
            message = (f"Too many failed log-ins from your network. Try again in "
                       f"{_minutes(retry_after)}.")
        super().__init__(message, code="rate_limited")
        self.retry_after = retry_after
        self.scope = scope


def _minutes(seconds: int) -> str:
    minutes = max(1, math.ceil(seconds / 60))
    return "1 minute" if minutes == 1 else f"{minutes} minutes"


@dataclass(frozen=True)
class _Unit:
    """One reserved unit of one budget: enough to give it back."""

    key: str
    expiry: int


@dataclass
class LoginAttempt:
    """The units one log-in attempt holds; ``give_back`` when the password was right."""

    units: list[_Unit]

    def give_back(self) -> None:
        storage = limiter.storage
        for unit in self.units:
            storage.incr(unit.key, unit.expiry, amount=-1)
        self.units = []


def _reserve(limit: RateLimitItem, scope: str, identifier: str) -> _Unit:
    """Take one unit of ``scope``'s budget for ``identifier`` atomically, or raise."""
    storage = limiter.storage
    key = limit.key_for("clinic-login", scope, identifier[:_MAX_IDENTIFIER])
    expiry = limit.get_expiry()
    # One atomic increment (a Lua script on Redis, a lock in memory) decides: the
    # attempts that find the counter already at the limit are refused unchecked.
    if storage.incr(key, expiry) > limit.amount:
        retry_after = max(1, math.ceil(storage.get_expiry(key) - time.time()))
        set_retry_after(retry_after)
        raise LoginThrottled(retry_after, scope=scope)
    return _Unit(key, expiry)


def reserve_login_attempt(email: str) -> LoginAttempt:
    """Reserve one failed log-in from the account's and the address's budgets."""
    config = current_app.config
    account = parse(config["LOGIN_LIMIT_PER_ACCOUNT"])
    per_ip = parse(config["LOGIN_LIMIT_PER_IP"])
    units = [_reserve(account, "account", (email or "").strip().lower())]
    try:
        units.append(_reserve(per_ip, "ip", request.remote_addr or "unknown"))
    except LoginThrottled:
        # Refused before any password was checked: the account keeps its unit.
        LoginAttempt(units).give_back()
        raise
    return LoginAttempt(units)


def authenticate_within_budget(session: Session, email: str, password: str, now: datetime) -> User:
    """``accounts.authenticate`` behind the shared budgets (web log-in and API tokens).

    Raises ``LoginThrottled`` (429) before checking the password when a budget is
    spent; a right password (also for a not yet verified address) costs nothing.
    """
    attempt = reserve_login_attempt(email)
    try:
        user = accounts.authenticate(session, email, password, now)
    except NotAuthenticated as exc:
        if exc.code == "email_not_verified":  # the password was right
            attempt.give_back()
        raise
    attempt.give_back()
    return user


def trust_proxies(app: Flask) -> None:
    """Take the client's address and scheme from the ``CLINIC_TRUSTED_PROXIES`` proxies
    in front (their ``X-Forwarded-For``/``-Proto``); with 0, the headers are ignored."""
    proxies = app.config["TRUSTED_PROXIES"]
    if proxies:
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=proxies, x_proto=proxies
        )
