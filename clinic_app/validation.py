"""Input rules shared by pages, the API, the services and the configuration.

Pure (no Flask, no database, no clock): each rule is a function of its input and, for dates,
of "today" passed in. Pages and API call the same functions, so a value refused by one is
refused by the other with the same message.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC
from datetime import date
from datetime import datetime
from datetime import timedelta
from decimal import Decimal
from decimal import InvalidOperation
from functools import cache
from zoneinfo import available_timezones

from clinic_app.errors import ValidationFailed

# Primary keys are 32-bit integers in the database: a bigger number cannot name a row, and
# sent to PostgreSQL it is a driver overflow (a 500), so it is "not found" before any query.
MAX_ID = 2**31 - 1

# Every date a person types (time off, hours, closures, page arguments) must fall in this
# window around today: far enough back for last year's records, far enough ahead for the
# longest booking horizon (730 days). Outside it a date is a typo, and years like 0001 or
# 9999 overflow datetime arithmetic further down.
DATE_PAST_DAYS = 2 * 366
DATE_FUTURE_DAYS = 3 * 366

# Prices are stored in pence as 32-bit integers; £100,000 is far above any session price.
MAX_PRICE_CENTS = 10_000_000

# Zone names that exist as files in the tz database but are not places: a clinic cannot be in
# "Factory" (its abbreviation is "-00") or "localtime" (whatever the server says).
_NOT_PLACES = frozenset({"Factory", "localtime", "posixrules"})
_NOT_PLACE_PREFIXES = ("right/", "posix/")


def parse_id(raw: object) -> int | None:
    """A decimal id from a query string or form (``"42"``), or None when it cannot name a row:
    empty, not digits, zero, or above :data:`MAX_ID`."""
    if not isinstance(raw, str) or not raw.isascii() or not raw.isdigit():
        return None
    if len(raw) > 10:  # quicker than int() on a megabyte of digits, and already too big
        return None
    value = int(raw)
    return value if 1 <= value <= MAX_ID else None


def id_in_range(value: int) -> bool:
    """True when ``value`` could be a primary key (1..MAX_ID)."""
    return 1 <= value <= MAX_ID


# --- dates ------------------------------------------------------------------------------------


def date_window(today: date) -> tuple[date, date]:
    """The first and last date accepted as input on ``today`` (inclusive)."""
    return today - timedelta(days=DATE_PAST_DAYS), today + timedelta(days=DATE_FUTURE_DAYS)


def date_problem(value: date, today: date) -> str | None:
    """A field message when ``value`` lies outside :func:`date_window`, else None."""
    first, last = date_window(today)
    if first <= value <= last:
        return None
    return f"Choose a date from {first:%d %b %Y} to {last:%d %b %Y}."


def check_dates(today: date, message: str = "Some dates are out of range.",
                **dates: date | None) -> None:
    """Raise ValidationFailed (fields named by the keywords) for dates outside the window."""
    fields = {}
    for name, value in dates.items():
        if value is not None and (problem := date_problem(value, today)):
            fields[name] = problem
    if fields:
        raise ValidationFailed(message, code="date_out_of_range", fields=fields)


# Instants sent to the API (booking starts) must lie in these years whatever the clock says:
# the services then apply the booking horizon; outside them, converting to the clinic's zone
# overflows (0001-01-01T00:00Z is before year 1 in London's 1847 local mean time).
INSTANT_YEARS = (2000, 2199)


def instant_problem(value: datetime) -> str | None:
    """A message when an aware datetime is outside :data:`INSTANT_YEARS` (in UTC), else None."""
    first, last = INSTANT_YEARS
    try:
        year = value.astimezone(UTC).year
    except OverflowError:
        year = value.year
    if first <= year <= last:
        return None
    return f"Give a time between the years {first} and {last}."


def parse_date_arg(raw: str | None, today: date, *, name: str) -> date | None:
    """A ``?date=``-style argument: None when absent or not a date (the page shows its
    default); ValidationFailed (422) when it is a real date outside the window."""
    if not raw or len(raw) > 10:
        return None
    try:
        value = date.fromisoformat(raw)
    except ValueError:
        return None
    if problem := date_problem(value, today):
        raise ValidationFailed(f"That date is outside the range we can show. {problem}",
                               code="date_out_of_range", fields={name: problem})
    return value


# --- text -------------------------------------------------------------------------------------

# Control characters (Unicode category Cc: NUL, tab, CR, LF, DEL, C1) and the Unicode line and
# paragraph separators: none belongs in a name, phone number, subject or reason. CR/LF in a
# name breaks the subject line of an email that carries it.
_LINE_BREAKING = re.compile(r"[\u2028\u2029]")


def has_control_characters(text: str) -> bool:
    """True when ``text`` holds a character that has no place on one line."""
    return bool(_LINE_BREAKING.search(text)) or any(
        unicodedata.category(ch) == "Cc" for ch in text
    )


SINGLE_LINE_MESSAGE = "Use one line of text without control characters."


def single_line_problem(text: str | None) -> str | None:
    """The field message for a single-line value with control characters, else None."""
    if text and has_control_characters(text):
        return SINGLE_LINE_MESSAGE
    return None


def single_line(text: str) -> str:
    """For pydantic ``AfterValidator``: refuse control characters (ValueError)."""
    if has_control_characters(text):
        raise ValueError(SINGLE_LINE_MESSAGE)
    return text


def has_nul(text: str) -> bool:
    """PostgreSQL cannot store U+0000 in text; no field accepts it."""
    return "\x00" in text


# --- money ------------------------------------------------------------------------------------


def price_to_cents(value: Decimal | str | None) -> tuple[int | None, str | None]:
    """A price in pounds (``Decimal("65.00")``) as pence, or a field message.

    Refuses non-numbers, infinities, negative amounts, fractions of a penny (``0.005``, which
    would be silently stored as 0) and amounts above £100,000. Zero (a free session) is fine.
    """
    if value is None or value == "":
        return None, "Enter a price."
    try:
        amount = Decimal(value)
    except (InvalidOperation, ValueError, TypeError):
        return None, "Enter a price such as 65.00."
    if not amount.is_finite():
        return None, "Enter a price such as 65.00."
    if amount < 0:
        return None, "Enter a price of 0 or more."
    pence = amount * 100
    if pence != pence.to_integral_value():
        return None, "Prices are in whole pence: at most two decimals, e.g. 65.50."
    cents = int(pence)
    if cents > MAX_PRICE_CENTS:
        return None, f"At most £{MAX_PRICE_CENTS // 100:,}."
    return cents, None


# --- time zones -------------------------------------------------------------------------------


@cache
def iana_zone_names() -> frozenset[str]:
    """Real places of the IANA tz database (``Europe/London``, ``UTC``), without the aliases
    that are not places (``Factory``, ``localtime``, ``posixrules``, ``right/*``)."""
    return frozenset(
        name for name in available_timezones()
        if name not in _NOT_PLACES and not name.startswith(_NOT_PLACE_PREFIXES)
    ) | {"UTC"}


def is_iana_zone(name: str) -> bool:
    """True for a real IANA zone name (no file system access: long names cannot OSError)."""
    return name in iana_zone_names()
