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


def middleware_may_limit(app: Flask, endpoint: str | None, blueprint: str | None) -> bool:
    """True when Flask-Limiter's before-request check could apply a limit to ``endpoint``:
    its own resolution (``LimitManager.resolve_limits``, as the check calls it, with default
    and blueprint limits included) returns one, or meta limits or an in-memory fallback are
    configured (both are decided elsewhere in the check)."""
    from flask_limiter.util import get_qualified_name

    config = app.config
    if (config.get("RATELIMIT_META") or config.get("RATELIMIT_IN_MEMORY_FALLBACK")
            or config.get("RATELIMIT_IN_MEMORY_FALLBACK_ENABLED")):
        return True
    view = app.view_functions.get(endpoint or "")
    name = get_qualified_name(view) if view else ""
    defaults, decorated = limiter.limit_manager.resolve_limits(
        app, endpoint, blueprint, name, in_middleware=True, marked_for_limiting=False)
    return bool(defaults or decorated)


def skip_idle_limit_checks(app: Flask) -> None:
    """Run Flask-Limiter's before-request check only for endpoints it could limit there.

    That check looks, on every request, for limits that apply outside the ``@limiter.limit``
    decorators: application-wide, default, meta and blueprint limits. This app declares
    none (each limit sits on the view it guards, and its decorator checks and counts it), so
    the check found nothing on every request, for about 0.13 ms of CPU each (4% of a public
    availability request). Now :func:`middleware_may_limit` is asked once per endpoint and
    the check runs as before wherever it says yes, and for an endpoint once a decorated
    helper inside its view has registered a hint there. Limits are declared when the app is
    built (decorators, ``RATELIMIT_*`` settings), so the answer per endpoint does not
    change while the process runs. Call after ``limiter.init_app(app)``.
    """
    hook = limiter._check_request_limit  # the bound method init_app registered
    funcs = app.before_request_funcs.setdefault(None, [])
    if hook not in funcs:
        return
    manager = limiter.limit_manager
    needed_for: dict[tuple[str | None, str | None], bool] = {}

    def check_request_limit() -> None:
        key = (request.endpoint, request.blueprint)
        needed = needed_for.get(key)
        if needed is None:
            needed = needed_for[key] = middleware_may_limit(app, *key)
        if needed or manager.has_hints(request.endpoint or ""):
            hook()

    funcs[funcs.index(hook)] = check_request_limit
