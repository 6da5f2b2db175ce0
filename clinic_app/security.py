"""Passwords (argon2id) and random tokens (only their hashes are stored)."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError
from argon2.exceptions import VerificationError
from flask import current_app
from flask import has_app_context

#: Production: argon2-cffi's defaults, the RFC 9106 low-memory profile (~0.5 s a verify here).
PRODUCTION_HASHER = PasswordHasher()
#: Under ``TESTING`` only: the cheapest parameters argon2 accepts, so that a test suite full of
#: log-ins does not spend a third of its time hashing. Hashes carry their parameters, so either
#: hasher verifies the other's hashes; production marks a cheap hash for rehashing at log-in.
TESTING_HASH_PARAMETERS = {"time_cost": 1, "memory_cost": 8, "parallelism": 1}
TESTING_HASHER = PasswordHasher(**TESTING_HASH_PARAMETERS)
# Verified against when the account does not exist, so that unknown and known
# emails take the same time (no account enumeration by timing); one per hasher.
_DUMMY_HASH = {
    hasher: hasher.hash("not-a-real-password-" + secrets.token_hex(8))
    for hasher in (PRODUCTION_HASHER, TESTING_HASHER)
}


def _hasher() -> PasswordHasher:
    """The testing hasher inside an app with ``TESTING`` set, else the production one."""
    if has_app_context() and current_app.config.get("TESTING"):
        return TESTING_HASHER
    return PRODUCTION_HASHER


MIN_PASSWORD_LENGTH = 10
_COMMON = {
    "password1234",
    "1234567890",
    "qwertyuiop",
    "password123",
    "iloveyou123",
    "letmein1234",
    "0123456789",
    "1111111111",
}


def password_hasher() -> PasswordHasher:
    """The hasher in use (its parameters are printed by bench/timing.py)."""
    return _hasher()


def hash_password(password: str) -> str:
    return _hasher().hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """Check ``password``; with no hash, burn the same time and fail."""
    hasher = _hasher()
    try:
        return hasher.verify(password_hash or _DUMMY_HASH[hasher], password) and bool(
            password_hash)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return _hasher().check_needs_rehash(password_hash)


def password_problem(password: str, *, email: str = "", name: str = "") -> str | None:
    """Why ``password`` is too weak, or None (ASVS: length over composition rules)."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"Use at least {MIN_PASSWORD_LENGTH} characters."
    if len(password) > 128:
        return "Use at most 128 characters."
    lowered = password.lower()
    if lowered in _COMMON or len(set(password)) < 4:
        return "This password is too easy to guess."
    local = email.split("@")[0].lower()
    if local and len(local) >= 4 and local in lowered:
        return "Do not use your email address in the password."
    return None


def new_token() -> str:
    """A URL-safe secret with 256 bits of entropy."""
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def constant_time_equal(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())
