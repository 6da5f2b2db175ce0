"""Account use cases: sign-up, verification, log-in, reset, changes, invitations.

Every answer that could tell whether an email is registered is the same for
known and unknown addresses, and takes the same time (a dummy hash is checked).
"""

from __future__ import annotations

from datetime import datetime
from datetime import timedelta

from email_validator import EmailNotValidError
from email_validator import validate_email
from sqlalchemy import bindparam
from sqlalchemy import delete
from sqlalchemy import or_
from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlalchemy.orm import contains_eager
from sqlalchemy.orm import joinedload

from clinic_app.errors import DomainError
from clinic_app.errors import NotAuthenticated
from clinic_app.errors import ValidationFailed
from clinic_app.models.accounts import ApiToken
from clinic_app.models.accounts import LoginSession
from clinic_app.models.accounts import OneTimeToken
from clinic_app.models.accounts import Role
from clinic_app.models.accounts import User
from clinic_app.models.booking import Booking
from clinic_app.models.booking import HoldPurpose
from clinic_app.models.booking import unfiltered
from clinic_app.models.schedule import Therapist
from clinic_app.security import hash_password
from clinic_app.security import needs_rehash
from clinic_app.security import new_token
from clinic_app.security import password_problem
from clinic_app.security import token_hash
from clinic_app.security import verify_password
from clinic_app.services import holds
from clinic_app.services.notify import events as notify_events

TOKEN_TTL = {
    "verify": timedelta(days=2),
    "reset": timedelta(minutes=60),
    "invite": timedelta(days=7),
    "change_email": timedelta(days=2),
    "sign_in": timedelta(minutes=15),
}


def normalise_email(raw: str, *, field: str = "email") -> str:
    """Syntax-check and lower-case an address (no DNS look-up)."""
    try:
        info = validate_email((raw or "").strip(), check_deliverability=False)
    except EmailNotValidError as exc:
        raise ValidationFailed(
            "Enter a valid email address.", fields={field: str(exc)}
        ) from None
    return info.normalized.lower()


def find_user(session: Session, email: str) -> User | None:
    return session.scalar(select(User).where(User.email == email.lower()))


def _check_password(password: str, *, email: str = "", name: str = "") -> None:
    problem = password_problem(password, email=email, name=name)
    if problem:
        raise ValidationFailed(problem, code="weak_password", fields={"password": problem})


def issue_token(
    session: Session, user: User, purpose: str, now: datetime, payload: str | None = None
) -> str:
    """Create a single-use token; returns the secret (only its hash is stored)."""
    raw = new_token()
    session.add(
        OneTimeToken(
            user_id=user.id,
            purpose=purpose,
            token_hash=token_hash(raw),
            payload=payload,
            created_at=now,
            expires_at=now + TOKEN_TTL[purpose],
        )
    )
    return raw


def consume_token(session: Session, raw: str, purpose: str, now: datetime) -> OneTimeToken:
    """Use a token once. Unknown, expired and used tokens all fail clearly."""
    row = session.scalar(
        select(OneTimeToken).where(
            OneTimeToken.token_hash == token_hash(raw or ""), OneTimeToken.purpose == purpose
        )
    )
    if row is None:
        raise DomainError("This link is not valid.", code="token_invalid")
    if row.used_at is not None:
        raise DomainError("This link has already been used.", code="token_used")
    if row.expires_at <= now:
        raise DomainError("This link has expired. Ask for a new one.", code="token_expired")
    row.used_at = now
    return row


def peek_token(session: Session, raw: str, purpose: str, now: datetime) -> OneTimeToken | None:
    """The token if it could still be used (for showing a form), else None."""
    row = session.scalar(
        select(OneTimeToken).where(
            OneTimeToken.token_hash == token_hash(raw or ""), OneTimeToken.purpose == purpose
        )
    )
    if row is None or row.used_at is not None or row.expires_at <= now:
        return None
    return row


def _send(session: Session, user: User, kind: str, key: str, now: datetime, to: str | None = None,
          **context: str) -> None:
    notify_events.account_email(session, user, kind, key, now, to=to, **context)


def _rehearse_send(session: Session, address: str, kind: str, now: datetime) -> None:
    """For an address without an account: write the same outbox intent as for a real one
    (plus a stand-in token), then roll it back, so that both answers take the same time (no
    account enumeration by timing; bench/timing.py measures the gap)."""
    stand_in = User(email=address, name="", role=Role.CLIENT.value)
    savepoint = session.begin_nested()
    try:
        _send(session, stand_in, kind, f"rehearsal:{new_token()}", now, token=new_token())
        session.flush()
    finally:
        savepoint.rollback()


def _next_param(next_path: str | None) -> dict[str, str]:
    """The page to continue to after the email's link, for the email to carry (the caller
    has checked that it is a same-site path; the pages check it again when it comes back)."""
    return {"next": next_path} if next_path else {}


def send_verification(session: Session, user: User, now: datetime, *,
                      next_path: str | None = None) -> None:
    raw = issue_token(session, user, "verify", now)
    session.flush()
    _send(session, user, "verify_email", f"user:{user.id}:verify:{token_hash(raw)[:16]}", now,
          token=raw, **_next_param(next_path))


def signup(
    session: Session,
    *,
    name: str,
    email: str,
    password: str,
    now: datetime,
    phone: str | None = None,
    consent: bool = True,
    hold_id: int | None = None,
    next_path: str | None = None,
) -> User | None:
    """Register a client and send the verification email.

    If the address is taken, the owner gets a "you already have an account"
    email instead and the caller gets the same answer (None instead of a user).
    ``next_path`` (a same-site path the visitor was on their way to) rides along in either
    email's link, so verifying and the first log-in end there.
    With ``hold_id`` (a visitor's live sign-up hold, issue 12.8) the hold is attached to the
    new account and verifying the email books it (:func:`book_held_slot`); an unknown or
    taken hold raises NotFound ``hold_not_found``, an expired one HoldExpired (409).
    """
    name = (name or "").strip()
    fields: dict[str, str] = {}
    if not name:
        fields["name"] = "Enter your name."
    elif len(name) > 120:
        fields["name"] = "Use at most 120 characters."
    if not consent:
        fields["consent"] = "Please accept the privacy notice to create an account."
    if phone and len(phone) > 40:
        fields["phone"] = "Use at most 40 characters."
    try:
        address = normalise_email(email)
    except ValidationFailed as exc:
        fields.update(exc.fields)
        address = ""
    problem = password_problem(password or "", email=address, name=name)
    if problem:
        fields["password"] = problem
    if fields:
        first = next(iter(fields.values()))
        code = "weak_password" if list(fields) == ["password"] else "validation_failed"
        raise ValidationFailed(first, code=code, fields=fields)
    if hold_id is not None:
        # Checked before the account exists, so a bad hold creates nothing.
        holds.claimable_hold(session, hold_id, client_id=None, now=now)

    password_hash = hash_password(password)  # hashed either way: equal timing
    existing = find_user(session, address)
    if existing is not None:
        _send(session, existing, "account_exists",
              f"user:{existing.id}:account-exists:{now.isoformat()}", now,
              **_next_param(next_path))
        return None
    user = User(
        email=address,
        name=name,
        phone=(phone or None),
        role=Role.CLIENT.value,
        password_hash=password_hash,
        consent_at=now,
        created_at=now,
    )
    session.add(user)
    session.flush()
    if hold_id is not None:
        holds.claim_hold(session, hold_id, client_id=user.id, purpose=HoldPurpose.SIGNUP.value,
                         now=now)
    send_verification(session, user, now, next_path=next_path)
    return user


def book_held_slot(session: Session, user: User, now: datetime
                   ) -> tuple[Booking | None, tuple[int, datetime] | None]:
    """After ``user`` verified their email: their sign-up hold becomes their booking.

    Returns ``(booking, None)`` when it did; ``(None, (service_id, start))`` when the hold had
    expired (the hold is released; the page offers the nearest free times instead);
    ``(None, None)`` when there was no hold.
    """
    hold = holds.signup_hold_for(session, user.id)
    if hold is None:
        return None, None
    if not hold.hold_lives(now):
        lost = (hold.service_id, hold.start_at)
        holds.release_hold(session, hold, now)
        return None, lost
    return holds.convert_hold(session, hold, client=user, actor=user, now=now), None


def verify_email(session: Session, raw: str, now: datetime) -> User:
    token = consume_token(session, raw, "verify", now)
    user = token.user
    if user.email_verified_at is None:
        user.email_verified_at = now
    return user


def resend_verification(session: Session, email: str, now: datetime, *,
                        next_path: str | None = None) -> None:
    """Same answer whoever asks; only an unverified account gets a new link (carrying
    ``next_path``, as :func:`signup`'s does)."""
    try:
        address = normalise_email(email)
    except ValidationFailed:
        return
    user = find_user(session, address)
    if user is not None and user.email_verified_at is None and user.is_active:
        send_verification(session, user, now, next_path=next_path)


def authenticate(session: Session, email: str, password: str, now: datetime) -> User:
    """The user for these credentials, or NotAuthenticated (same message either way)."""
    address = (email or "").strip().lower()
    user = find_user(session, address) if address else None
    ok = verify_password(user.password_hash if user else None, password or "")
    if not ok or user is None or not user.is_active:
        raise NotAuthenticated("Wrong email or password.", code="bad_credentials")
    if user.email_verified_at is None:
        raise NotAuthenticated(
            "Please confirm your email address first: we sent you a link.",
            code="email_not_verified",
        )
    if user.password_hash and needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    return user


def _email_link_if_account(session: Session, email: str, now: datetime, *, purpose: str,
                           kind: str, label: str) -> None:
    """Email a ``purpose`` link if an active account has this address; for any other
    address rehearse the same work, so the answer and its timing say nothing."""
    try:
        address = normalise_email(email)
    except ValidationFailed:
        return
    user = find_user(session, address)
    if user is None or not user.is_active:
        _rehearse_send(session, address, kind, now)
        return
    raw = issue_token(session, user, purpose, now)
    session.flush()
    _send(session, user, kind, f"user:{user.id}:{label}:{token_hash(raw)[:16]}", now, token=raw)


def request_password_reset(session: Session, email: str, now: datetime) -> None:
    """Email a reset link if the account exists; silent otherwise."""
    _email_link_if_account(session, email, now, purpose="reset", kind="password_reset",
                           label="reset")


def request_sign_in_link(session: Session, email: str, now: datetime) -> None:
    """Email a one-time sign-in link if the account exists; silent otherwise.

    The way in when the account's log-in budget is spent: the owner proves control
    of the mailbox instead of knowing the password.
    """
    _email_link_if_account(session, email, now, purpose="sign_in", kind="sign_in_link",
                           label="sign-in")


def sign_in_with_link(session: Session, raw: str, now: datetime) -> User:
    """Use a sign-in link once; the user to log in (the link proves the mailbox)."""
    token = consume_token(session, raw, "sign_in", now)
    user = token.user
    if not user.is_active:
        raise DomainError("This link is not valid.", code="token_invalid")
    if user.email_verified_at is None:
        user.email_verified_at = now
    return user


def _set_password(user: User, password: str) -> None:
    _check_password(password, email=user.email, name=user.name)
    user.password_hash = hash_password(password)
    revoke_sessions(user)


def revoke_sessions(user: User) -> None:
    """Invalidate every session, remember cookie and API token of ``user``."""
    user.session_version = (user.session_version or 1) + 1


def open_login_session(session: Session, user: User, now: datetime, lifetime: timedelta) -> str:
    """Start a log-in on one device; returns its secret (only the hash is stored).

    The user's expired and revoked rows are deleted on the way, so the table keeps
    only live sessions without a housekeeping job.
    """
    session.execute(
        delete(LoginSession).where(
            LoginSession.user_id == user.id,
            or_(LoginSession.expires_at <= now,
                LoginSession.session_version != user.session_version),
        )
    )
    raw = new_token()
    session.add(LoginSession(user_id=user.id, token_hash=token_hash(raw),
                             session_version=user.session_version, created_at=now,
                             expires_at=now + lifetime))
    session.flush()
    return raw


def user_for_login_session(session: Session, user_id: int, raw: str, now: datetime) -> User | None:
    """The active user whose live log-in session has secret ``raw``, else None."""
    # One statement for the session row and its user (every page of a logged-in user).
    row = session.scalar(
        select(LoginSession).join(LoginSession.user).options(contains_eager(LoginSession.user))
        .where(LoginSession.token_hash == token_hash(raw), LoginSession.user_id == user_id)
    )
    if row is None or row.expires_at <= now:
        return None
    user = row.user
    if not user.is_active or user.session_version != row.session_version:
        return None
    return user


def close_login_session(session: Session, raw: str) -> None:
    """End one log-in (log-out): its cookies are refused from now on."""
    session.execute(delete(LoginSession).where(LoginSession.token_hash == token_hash(raw)))


def reset_password(session: Session, raw: str, password: str, now: datetime) -> User:
    _check_password(password)
    token = consume_token(session, raw, "reset", now)
    user = token.user
    _set_password(user, password)
    # A reset proves control of the mailbox.
    if user.email_verified_at is None:
        user.email_verified_at = now
    return user


def require_password(user: User, password: str | None, *, field: str = "password",
                     message: str = "Your password is wrong.") -> None:
    """The logged-in user's password, asked again before a sensitive change: ValidationFailed
    (``bad_credentials``, on ``field``) unless it is right."""
    if not verify_password(user.password_hash, password or ""):
        raise ValidationFailed(message, code="bad_credentials", fields={field: message})


def change_password(
    session: Session, user: User, current: str, new: str, now: datetime
) -> None:
    require_password(user, current, field="current_password",
                     message="Your current password is wrong.")
    _set_password(user, new)
    _send(session, user, "password_changed", f"user:{user.id}:pw-changed:{now.isoformat()}", now)


def request_email_change(
    session: Session, user: User, new_email: str, password: str, now: datetime
) -> None:
    """Send a confirmation link to the new address; nothing changes until it is used."""
    require_password(user, password)
    address = normalise_email(new_email, field="new_email")
    if address == user.email:
        raise ValidationFailed("That is already your address.",
                               fields={"new_email": "That is already your address."})
    raw = issue_token(session, user, "change_email", now, payload=address)
    session.flush()
    _send(session, user, "confirm_email_change",
          f"user:{user.id}:change-email:{token_hash(raw)[:16]}", now, to=address, token=raw,
          new_email=address)


def confirm_email_change(session: Session, raw: str, now: datetime) -> User:
    token = consume_token(session, raw, "change_email", now)
    user = token.user
    address = token.payload or ""
    if find_user(session, address) is not None:
        raise DomainError("That address now belongs to another account.", code="email_taken")
    old = user.email
    user.email = address
    user.email_verified_at = now
    revoke_sessions(user)
    _send(session, user, "email_changed", f"user:{user.id}:email-changed:{now.isoformat()}", now,
          to=old, new_email=address)
    return user


def invite_therapist(session: Session, *, name: str, email: str, now: datetime) -> User:
    """Create a therapist account without a password and email a set-password link."""
    address = normalise_email(email)
    if not (name or "").strip():
        raise ValidationFailed("Enter the therapist's name.", fields={"name": "Required."})
    if find_user(session, address) is not None:
        raise ValidationFailed("An account with this email already exists.", code="email_taken",
                               fields={"email": "An account with this email already exists."})
    user = User(email=address, name=name.strip(), role=Role.THERAPIST.value, created_at=now)
    session.add(user)
    session.flush()
    session.add(Therapist(user_id=user.id, feed_token=new_token()))
    send_invitation(session, user, now)
    return user


def send_invitation(session: Session, user: User, now: datetime) -> None:
    raw = issue_token(session, user, "invite", now)
    session.flush()
    _send(session, user, "therapist_invite", f"user:{user.id}:invite:{token_hash(raw)[:16]}", now,
          token=raw)


def accept_invite(session: Session, raw: str, password: str, now: datetime) -> User:
    _check_password(password)
    token = consume_token(session, raw, "invite", now)
    user = token.user
    _set_password(user, password)
    user.email_verified_at = user.email_verified_at or now
    user.consent_at = user.consent_at or now
    return user


def create_admin(
    session: Session, *, email: str, name: str, password: str, now: datetime
) -> User:
    address = normalise_email(email)
    _check_password(password, email=address, name=name)
    user = find_user(session, address)
    if user is None:
        user = User(email=address, name=name or "Admin", created_at=now)
        session.add(user)
    user.role = Role.ADMIN.value
    user.password_hash = hash_password(password)
    user.email_verified_at = user.email_verified_at or now
    user.is_active = True
    session.flush()
    return user


def issue_api_token(
    session: Session, user: User, now: datetime, days: int
) -> tuple[str, ApiToken]:
    raw = new_token()
    row = ApiToken(
        user_id=user.id,
        token_hash=token_hash(raw),
        created_at=now,
        expires_at=now + timedelta(days=days),
        session_version=user.session_version,
    )
    session.add(row)
    session.flush()
    return raw, row


# Every API request: the token and its user in one statement (the user was a lazy load).
_TOKEN_WITH_USER = unfiltered(  # no booking in it
    select(ApiToken)
    .options(joinedload(ApiToken.user, innerjoin=True))
    .where(ApiToken.token_hash == bindparam("token_hash"))
)


def user_for_api_token(session: Session, raw: str, now: datetime) -> tuple[User, ApiToken] | None:
    """The active user and the live token whose secret is ``raw``, else None."""
    row = session.scalar(_TOKEN_WITH_USER, {"token_hash": token_hash(raw)})
    if row is None or row.revoked_at is not None or row.expires_at <= now:
        return None
    user = row.user
    if not user.is_active or user.session_version != row.session_version:
        return None
    return user, row
