"""The admin dashboard's continuity panel (issue 13, item 4): one dataclass per figure
group, each computed for the 12 weeks up to the chosen one in a fixed number of queries.
The definitions are in docs/followup.md ("The continuity panel").

**Adherence to the recommended interval.** A follow-up is a session (booking not
cancelled) that a client booked while a dated recommendation of an earlier session was
current: the client's newest recommendation row created before the booking was made, for a
session that started before it. It landed inside its window when ``earliest <= local date <=
latest``, else before ``earliest`` or after ``latest``. Sessions booked with no such
recommendation (first visits, after a referral) are not follow-ups.

**Rebooking-prompt and recall conversion.** Of the prompts and recalls *sent* in a week (status
``sent``, by ``sent_at``; a retired, failed or dead row never reached the client), the ones
whose client made a booking within 7 days (7 x 24 elapsed hours) after the send: a booking
row with ``created_at`` in ``[sent_at, sent_at + 7 days]``, whatever its status now, never a
hold. A converted hold counts from its conversion (``Booking.convert`` resets ``created_at``).

**Waitlist offers.** The offers *made* in a week (by ``created_at``) by how they ended:
accepted, declined, expired (also an open offer past ``expires_at`` that the job has not
marked yet), withdrawn, or still open. For the accepted ones, the minutes the freed slot stayed
empty: from ``freed_at`` (when the slot first became free; an offer passed on after a decline
or an expiry keeps the first one) to ``responded_at`` (the accept), median and max.

Weeks start on Monday in the clinic's zone; a week across a DST change is 167 or 169 hours.
"""

from __future__ import annotations

from bisect import bisect_left
from bisect import bisect_right
from dataclasses import dataclass
from dataclasses import field
from datetime import UTC
from datetime import date
from datetime import datetime
from datetime import time
from datetime import timedelta
from statistics import median
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlalchemy.orm import aliased

from clinic_app.mail.outbox import SENT_RETENTION
from clinic_app.models.booking import INCLUDE_HOLDS
from clinic_app.models.booking import Booking
from clinic_app.models.booking import BookingStatus
from clinic_app.models.care import Recommendation
from clinic_app.models.outbox import OutboxMessage
from clinic_app.models.outbox import OutboxStatus
from clinic_app.models.waitlist import OfferStatus
from clinic_app.models.waitlist import WaitlistOffer
from clinic_app.services.notify.messages import REBOOKING_PROMPT
from clinic_app.services.notify.messages import RECALL

__all__ = ["CONVERSION_WINDOW", "Adherence", "ContinuityPanel", "Conversion", "EmailConversion",
           "OfferFigures", "continuity_panel", "email_conversion", "offer_figures"]

CHART_WEEKS = 12
#: A booking made this long after a prompt or recall was sent (or sooner) is its conversion.
CONVERSION_WINDOW = timedelta(days=7)


@dataclass
class Adherence:
    """Follow-ups of one period by where they landed relative to their window."""

    inside: int = 0
    before_earliest: int = 0
    after_latest: int = 0

    @property
    def total(self) -> int:
        return self.inside + self.before_earliest + self.after_latest

    def share(self, part: int) -> float | None:
        """``part`` as a fraction of all follow-ups (None when there were none)."""
        return part / self.total if self.total else None


@dataclass
class Conversion:
    """The emails of one kind sent in a period, and how many a booking followed."""

    sent: int = 0
    converted: int = 0
    #: Sent less than 7 days ago with no booking yet: one may still follow.
    waiting: int = 0

    @property
    def share(self) -> float | None:
        """Converted as a fraction of sent (None when none was sent: no division by zero)."""
        return self.converted / self.sent if self.sent else None


@dataclass
class EmailConversion:
    """Rebooking prompts and recalls of one week.

    ``kept`` is False when the outbox may already have deleted some of the week's sent rows
    (``mail.outbox.purge`` keeps them ``SENT_RETENTION``, 90 days): the counts would then be
    too low, so the page shows "not kept" instead of them.
    """

    prompts: Conversion = field(default_factory=Conversion)
    recalls: Conversion = field(default_factory=Conversion)
    kept: bool = True

    @property
    def sent(self) -> int:
        return self.prompts.sent + self.recalls.sent


@dataclass
class OfferFigures:
    """The waitlist offers made in one week, by how they ended, and how long the freed slots
    of the accepted ones stayed empty."""

    open: int = 0
    accepted: int = 0
    declined: int = 0
    expired: int = 0
    withdrawn: int = 0
    #: Per accepted offer, minutes from ``freed_at`` to the accept (ascending).
    empty_minutes: list[float] = field(default_factory=list)

    @property
    def made(self) -> int:
        return self.open + self.accepted + self.declined + self.expired + self.withdrawn

    @property
    def accepted_share(self) -> float | None:
        """Accepted as a fraction of made (None when none was made)."""
        return self.accepted / self.made if self.made else None

    @property
    def median_empty(self) -> float | None:
        """Median minutes a freed slot stayed empty before an accept (None without one)."""
        return median(self.empty_minutes) if self.empty_minutes else None

    @property
    def max_empty(self) -> float | None:
        return self.empty_minutes[-1] if self.empty_minutes else None


@dataclass
class ContinuityPanel:
    """The chosen week's figures and the 12 weeks up to it (oldest first), one field pair per
    figure group: adherence (``current``, ``weeks``), email conversion (``emails``,
    ``email_weeks``) and waitlist offers (``offers``, ``offer_weeks``)."""

    week: date
    current: Adherence
    weeks: list[tuple[date, Adherence]] = field(default_factory=list)
    emails: EmailConversion = field(default_factory=EmailConversion)
    email_weeks: list[tuple[date, EmailConversion]] = field(default_factory=list)
    offers: OfferFigures = field(default_factory=OfferFigures)
    offer_weeks: list[tuple[date, OfferFigures]] = field(default_factory=list)


def _midnight(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)


def _week_of(moment: datetime, tz: ZoneInfo) -> date:
    """The Monday (clinic zone) of the week ``moment`` falls in."""
    day = moment.astimezone(tz).date()
    return day - timedelta(days=day.weekday())


def continuity_panel(session: Session, week: date, tz: ZoneInfo, *,
                     now: datetime) -> ContinuityPanel:
    """Every figure group for the week starting ``week`` and each of the 12 weeks ending with
    it. ``now`` decides which emails may still convert and which weeks' emails are kept."""
    first_week = week - timedelta(weeks=CHART_WEEKS - 1)
    adherence = _adherence(session, first_week, tz)
    emails = email_conversion(session, first_week, tz, now=now)
    offers = offer_figures(session, first_week, tz, now=now)
    return ContinuityPanel(week=week, current=adherence[week], weeks=sorted(adherence.items()),
                           emails=emails[week], email_weeks=sorted(emails.items()),
                           offers=offers[week], offer_weeks=sorted(offers.items()))


def _adherence(session: Session, first_week: date, tz: ZoneInfo) -> dict[date, Adherence]:
    """Follow-ups by week, for the 12 weeks from ``first_week`` (one query, or two when
    there are bookings)."""
    start = _midnight(first_week, tz)
    end = _midnight(first_week + timedelta(weeks=CHART_WEEKS), tz)
    bookings = session.execute(
        select(Booking.client_id, Booking.start_at, Booking.created_at)
        .where(Booking.status != BookingStatus.CANCELLED.value,
               Booking.start_at >= start, Booking.start_at < end)
    ).all()
    session_booking = aliased(Booking)
    clients = {b.client_id for b in bookings}
    # Every dated recommendation of those clients, with its session's start, oldest first.
    recs: dict[int, list[tuple[datetime, datetime, date, date]]] = {}
    if clients:
        for client_id, created, session_start, earliest, latest in session.execute(
            select(Recommendation.client_id, Recommendation.created_at,
                   session_booking.start_at, Recommendation.earliest, Recommendation.latest)
            .join(session_booking, session_booking.id == Recommendation.booking_id)
            .where(Recommendation.client_id.in_(clients), Recommendation.created_at < end)
            .order_by(Recommendation.client_id, Recommendation.created_at, Recommendation.id)
            # A recommendation's booking is a completed session, never a hold; and the
            # hold-hiding criteria cannot name the alias in a column-only select.
            .execution_options(**{INCLUDE_HOLDS: True})
        ):
            recs.setdefault(client_id, []).append((created, session_start, earliest, latest))
    by_week = {first_week + timedelta(weeks=i): Adherence() for i in range(CHART_WEEKS)}
    for client_id, booking_start, booked_at in bookings:
        history = recs.get(client_id, [])
        # The recommendation current when the booking was made (newest created before it).
        index = bisect_right([created for created, *_ in history], booked_at) - 1
        if index < 0:
            continue
        _, session_start, earliest, latest = history[index]
        if earliest is None or latest is None or session_start >= booking_start:
            continue  # after a referral (no dates), or not a follow-up of that session
        day = booking_start.astimezone(tz).date()
        bucket = by_week[_week_of(booking_start, tz)]
        if day < earliest:
            bucket.before_earliest += 1
        elif day > latest:
            bucket.after_latest += 1
        else:
            bucket.inside += 1
    return by_week


def email_conversion(session: Session, first_week: date, tz: ZoneInfo, *,
                     now: datetime) -> dict[date, EmailConversion]:
    """Prompts and recalls sent in each of the 12 weeks from ``first_week``, and how many a
    booking followed within ``CONVERSION_WINDOW``: two queries whatever the number of emails
    (the sent rows; the bookings their recipients made), matched in memory."""
    start = _midnight(first_week, tz)
    end = _midnight(first_week + timedelta(weeks=CHART_WEEKS), tz)
    sent = (
        select(OutboxMessage.kind, OutboxMessage.user_id, OutboxMessage.sent_at)
        .where(OutboxMessage.kind.in_([REBOOKING_PROMPT, RECALL]),
               OutboxMessage.status == OutboxStatus.SENT.value,
               OutboxMessage.sent_at >= start, OutboxMessage.sent_at < end)
    )
    emails = session.execute(sent).all()
    by_week = {first_week + timedelta(weeks=i): EmailConversion() for i in range(CHART_WEEKS)}
    kept_since = now - SENT_RETENTION
    for monday, figures in by_week.items():
        figures.kept = _midnight(monday, tz) >= kept_since
    if not emails:
        return by_week
    recipients = (sent.with_only_columns(OutboxMessage.user_id)
                  .where(OutboxMessage.user_id.is_not(None)).distinct().subquery())
    made: dict[int, list[datetime]] = {}
    for client_id, created in session.execute(
        select(Booking.client_id, Booking.created_at)
        .join(recipients, recipients.c.user_id == Booking.client_id)
        .where(Booking.status != BookingStatus.HELD.value,
               Booking.created_at >= start, Booking.created_at <= end + CONVERSION_WINDOW)
        .order_by(Booking.client_id, Booking.created_at)
        # "Not a hold" is part of the definition, so the filter above says it in so many
        # words rather than leaning on the session-wide hold-hiding criteria.
        .execution_options(**{INCLUDE_HOLDS: True})
    ):
        made.setdefault(client_id, []).append(created)
    for kind, user_id, sent_at in emails:
        figures = by_week[_week_of(sent_at, tz)]
        counts = figures.prompts if kind == REBOOKING_PROMPT else figures.recalls
        counts.sent += 1
        times = made.get(user_id, []) if user_id is not None else []
        first = bisect_left(times, sent_at)  # the first booking made at or after the send
        if first < len(times) and times[first] <= sent_at + CONVERSION_WINDOW:
            counts.converted += 1
        elif now < sent_at + CONVERSION_WINDOW:
            counts.waiting += 1
    return by_week


def offer_figures(session: Session, first_week: date, tz: ZoneInfo, *,
                  now: datetime) -> dict[date, OfferFigures]:
    """Waitlist offers made in each of the 12 weeks from ``first_week`` (one query whatever
    the number of offers). ``now`` tells an open offer past its expiry, which the job has not
    closed yet, from a live one: it is counted as expired."""
    start = _midnight(first_week, tz)
    end = _midnight(first_week + timedelta(weeks=CHART_WEEKS), tz)
    by_week = {first_week + timedelta(weeks=i): OfferFigures() for i in range(CHART_WEEKS)}
    for status, created, expires, freed, responded in session.execute(
        select(WaitlistOffer.status, WaitlistOffer.created_at, WaitlistOffer.expires_at,
               WaitlistOffer.freed_at, WaitlistOffer.responded_at)
        .where(WaitlistOffer.created_at >= start, WaitlistOffer.created_at < end)
    ):
        figures = by_week[_week_of(created, tz)]
        if status == OfferStatus.OPEN.value:
            if expires <= now:
                figures.expired += 1
            else:
                figures.open += 1
        elif status == OfferStatus.ACCEPTED.value:
            figures.accepted += 1
            if responded is not None:  # always set by the accept; a hand-made row may lack it
                figures.empty_minutes.append(max(0.0, (responded - freed).total_seconds() / 60))
        elif status == OfferStatus.DECLINED.value:
            figures.declined += 1
        elif status == OfferStatus.EXPIRED.value:
            figures.expired += 1
        else:
            figures.withdrawn += 1
    for figures in by_week.values():
        figures.empty_minutes.sort()
    return by_week
