"""All models, imported here so that metadata is complete for Alembic."""

from clinic_app.models.accounts import ApiToken
from clinic_app.models.accounts import OneTimeToken
from clinic_app.models.accounts import Role
from clinic_app.models.accounts import User
from clinic_app.models.audit import AuditEntry
from clinic_app.models.booking import ACTIVE_STATUSES
from clinic_app.models.booking import Booking
from clinic_app.models.booking import BookingStatus
from clinic_app.models.care import CheckIn
from clinic_app.models.care import Course
from clinic_app.models.care import Intake
from clinic_app.models.care import ProblemReport
from clinic_app.models.care import Recommendation
from clinic_app.models.care import SessionAmendment
from clinic_app.models.care import SessionRecord
from clinic_app.models.catalog_stamp import CatalogStamp
from clinic_app.models.outbox import OutboxMessage
from clinic_app.models.outbox import OutboxStatus
from clinic_app.models.outbox import WorkerJobRun
from clinic_app.models.schedule import ClinicSettings
from clinic_app.models.schedule import Closure
from clinic_app.models.schedule import HoursOverride
from clinic_app.models.schedule import Room
from clinic_app.models.schedule import Service
from clinic_app.models.schedule import Therapist
from clinic_app.models.schedule import WeeklyHours
from clinic_app.models.waitlist import FreedTime
from clinic_app.models.waitlist import OfferStatus
from clinic_app.models.waitlist import WaitlistEntry
from clinic_app.models.waitlist import WaitlistOffer
from clinic_app.models.waitlist import WaitlistStatus

__all__ = [
    "ACTIVE_STATUSES",
    "ApiToken",
    "AuditEntry",
    "Booking",
    "BookingStatus",
    "CatalogStamp",
    "CheckIn",
    "ClinicSettings",
    "Closure",
    "Course",
    "FreedTime",
    "HoursOverride",
    "Intake",
    "OfferStatus",
    "OneTimeToken",
    "OutboxMessage",
    "OutboxStatus",
    "WorkerJobRun",
    "ProblemReport",
    "Recommendation",
    "Role",
    "Room",
    "Service",
    "SessionAmendment",
    "SessionRecord",
    "Therapist",
    "User",
    "WaitlistEntry",
    "WaitlistOffer",
    "WaitlistStatus",
    "WeeklyHours",
]
