"""A user's own contact details: the name and phone number they edit on the account page.

Kept apart from ``services/accounts.py`` (log-in, passwords, email changes): changing these
needs no password and sends no email. The email address changes only through its
confirmation link (``accounts.request_email_change``).
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from clinic_app.errors import ValidationFailed
from clinic_app.models.accounts import User

NAME_MAX = 120  # User.name is String(120)
PHONE_MAX = 40  # User.phone is String(40)


def update_contact_details(session: Session, user: User, *, name: str,
                           phone: str | None) -> User:
    """Set ``user``'s name and phone (blank phone: none), trimmed; ValidationFailed with
    per-field messages for an empty or too long name or a too long phone."""
    name = (name or "").strip()
    phone = (phone or "").strip()
    fields: dict[str, str] = {}
    if not name:
        fields["name"] = "Enter your name."
    elif len(name) > NAME_MAX:
        fields["name"] = f"Use at most {NAME_MAX} characters."
    if len(phone) > PHONE_MAX:
        fields["phone"] = f"Use at most {PHONE_MAX} characters."
    if fields:
        raise ValidationFailed(next(iter(fields.values())), fields=fields)
    user.name = name
    user.phone = phone or None
    session.flush()
    return user
