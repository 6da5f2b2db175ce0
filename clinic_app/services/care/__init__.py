"""Treatment continuity: session records, courses, check-ins, follow-up windows, intake.

One module per concern; they import one way (``lookups`` and ``access`` at the bottom,
``staff`` at the top), and call ``services.notify.events`` only through its entry points:

* ``access``   THE health-data rule (the treating therapist) and the audit of staff reads
* ``inputs``   limits, choices, the intake questionnaire and the input validation
* ``lookups``  reads without access checks, shared by the modules below
* ``records``  courses, completing a session, the record's edit window and amendments
* ``checkins`` the signed check-in link, the answers, the red-flag alert
* ``reports``  a problem (red flag) reported after a session, any time within 14 days
* ``followup`` the recommender's input, stored windows, overrides, booking the next session
* ``intake``   the intake answers, screening flags and the "confirm first" hold
* ``staff``    the therapist's review queue and a client's timeline

This package re-exports their public names, so ``from clinic_app.services import care``
and ``care.complete_session(...)`` keep working. The pure rules live in
``clinic_app.scheduling.followup`` (re-exported as ``care.followup_rules``).
"""

from __future__ import annotations

from clinic_app.scheduling import followup as followup_rules
from clinic_app.services.care.access import STAFF_ROLES
from clinic_app.services.care.access import audit_read
from clinic_app.services.care.access import booking_for_health
from clinic_app.services.care.access import can_see_health
from clinic_app.services.care.access import get_client
from clinic_app.services.care.access import is_booking_therapist
from clinic_app.services.care.access import is_treating_therapist
from clinic_app.services.care.access import require_booking_therapist
from clinic_app.services.care.access import require_health_access
from clinic_app.services.care.access import treated_client_ids
from clinic_app.services.care.checkins import CHECKIN_DUE
from clinic_app.services.care.checkins import CHECKIN_KINDS
from clinic_app.services.care.checkins import CHECKIN_LINK_SALT
from clinic_app.services.care.checkins import CHECKIN_TOKEN_MAX_AGE
from clinic_app.services.care.checkins import SEEK_CARE_TEXT
from clinic_app.services.care.checkins import booking_for_checkin_token
from clinic_app.services.care.checkins import checkin_due_at
from clinic_app.services.care.checkins import checkin_token
from clinic_app.services.care.checkins import checkins_for_booking
from clinic_app.services.care.checkins import red_flag_labels
from clinic_app.services.care.checkins import submit_checkin
from clinic_app.services.care.followup import NextSessionOptions
from clinic_app.services.care.followup import check_early_booking
from clinic_app.services.care.followup import check_early_start
from clinic_app.services.care.followup import earliest_before
from clinic_app.services.care.followup import followup_for_booking
from clinic_app.services.care.followup import followup_input
from clinic_app.services.care.followup import followup_params
from clinic_app.services.care.followup import next_session_options
from clinic_app.services.care.followup import override_recommendation
from clinic_app.services.care.followup import recommendation_dict
from clinic_app.services.care.followup import recommendation_for_booking
from clinic_app.services.care.followup import recommended_earliest
from clinic_app.services.care.inputs import FLAG_AVOID_AREA
from clinic_app.services.care.inputs import FLAG_CONFIRM_FIRST
from clinic_app.services.care.inputs import FLAG_LABELS
from clinic_app.services.care.inputs import FLAG_LIGHT_PRESSURE
from clinic_app.services.care.inputs import FLAG_PREGNANCY
from clinic_app.services.care.inputs import GOALS
from clinic_app.services.care.inputs import INTAKE_QUESTIONS
from clinic_app.services.care.inputs import INTAKE_TEXT_MAX
from clinic_app.services.care.inputs import LIST_ITEM_MAX
from clinic_app.services.care.inputs import LIST_MAX_ITEMS
from clinic_app.services.care.inputs import NOTES_MAX
from clinic_app.services.care.inputs import OLDEST_DATE
from clinic_app.services.care.inputs import PROGRESS
from clinic_app.services.care.inputs import REASON_MAX
from clinic_app.services.care.inputs import RECORD_FIELDS
from clinic_app.services.care.inputs import WINDOW_FUTURE
from clinic_app.services.care.inputs import WINDOW_PAST
from clinic_app.services.care.inputs import AmendmentIn
from clinic_app.services.care.inputs import CheckInIn
from clinic_app.services.care.inputs import IntakeIn
from clinic_app.services.care.inputs import NewCourseIn
from clinic_app.services.care.inputs import OverrideIn
from clinic_app.services.care.inputs import ProblemReportIn
from clinic_app.services.care.inputs import SessionRecordIn
from clinic_app.services.care.inputs import SessionRecordPatch
from clinic_app.services.care.inputs import field_errors
from clinic_app.services.care.inputs import parse
from clinic_app.services.care.intake import confirm_intake
from clinic_app.services.care.intake import get_intake
from clinic_app.services.care.intake import initial_status_for
from clinic_app.services.care.intake import needs_confirmation
from clinic_app.services.care.intake import save_intake
from clinic_app.services.care.intake import screening_flags
from clinic_app.services.care.intake import status_for_intake
from clinic_app.services.care.lookups import checkin_for
from clinic_app.services.care.lookups import checkins_by_booking
from clinic_app.services.care.lookups import current_course
from clinic_app.services.care.lookups import current_recommendation
from clinic_app.services.care.lookups import intake_for
from clinic_app.services.care.lookups import local_date
from clinic_app.services.care.lookups import recommendation_and_intake
from clinic_app.services.care.lookups import recommendation_history
from clinic_app.services.care.lookups import session_record_for
from clinic_app.services.care.records import EDIT_WINDOW
from clinic_app.services.care.records import RECORD_INVALID
from clinic_app.services.care.records import amend_session_record
from clinic_app.services.care.records import complete_session
from clinic_app.services.care.records import edit_session_record
from clinic_app.services.care.records import get_session_record
from clinic_app.services.care.records import start_new_course
from clinic_app.services.care.reports import REPORT_WINDOW
from clinic_app.services.care.reports import report_problem
from clinic_app.services.care.reports import report_window_open
from clinic_app.services.care.staff import REVIEW_RED_FLAG_DAYS
from clinic_app.services.care.staff import ReviewItem
from clinic_app.services.care.staff import Timeline
from clinic_app.services.care.staff import client_timeline
from clinic_app.services.care.staff import review_queue

__all__ = [
    "AmendmentIn",
    "CHECKIN_DUE",
    "CHECKIN_KINDS",
    "CHECKIN_LINK_SALT",
    "CHECKIN_TOKEN_MAX_AGE",
    "CheckInIn",
    "EDIT_WINDOW",
    "FLAG_AVOID_AREA",
    "FLAG_CONFIRM_FIRST",
    "FLAG_LABELS",
    "FLAG_LIGHT_PRESSURE",
    "FLAG_PREGNANCY",
    "GOALS",
    "INTAKE_QUESTIONS",
    "INTAKE_TEXT_MAX",
    "IntakeIn",
    "LIST_ITEM_MAX",
    "LIST_MAX_ITEMS",
    "NOTES_MAX",
    "NewCourseIn",
    "NextSessionOptions",
    "OLDEST_DATE",
    "OverrideIn",
    "PROGRESS",
    "ProblemReportIn",
    "REPORT_WINDOW",
    "REASON_MAX",
    "RECORD_FIELDS",
    "RECORD_INVALID",
    "REVIEW_RED_FLAG_DAYS",
    "ReviewItem",
    "SEEK_CARE_TEXT",
    "STAFF_ROLES",
    "SessionRecordIn",
    "SessionRecordPatch",
    "Timeline",
    "WINDOW_FUTURE",
    "WINDOW_PAST",
    "amend_session_record",
    "audit_read",
    "booking_for_checkin_token",
    "booking_for_health",
    "can_see_health",
    "check_early_booking",
    "check_early_start",
    "checkin_due_at",
    "checkin_for",
    "checkin_token",
    "checkins_by_booking",
    "checkins_for_booking",
    "client_timeline",
    "complete_session",
    "confirm_intake",
    "current_course",
    "current_recommendation",
    "earliest_before",
    "edit_session_record",
    "field_errors",
    "followup_for_booking",
    "followup_input",
    "followup_params",
    "followup_rules",
    "get_client",
    "get_intake",
    "get_session_record",
    "initial_status_for",
    "intake_for",
    "is_booking_therapist",
    "is_treating_therapist",
    "local_date",
    "needs_confirmation",
    "next_session_options",
    "override_recommendation",
    "parse",
    "recommendation_dict",
    "recommendation_for_booking",
    "recommendation_history",
    "recommendation_and_intake",
    "recommended_earliest",
    "report_problem",
    "report_window_open",
    "red_flag_labels",
    "require_booking_therapist",
    "require_health_access",
    "review_queue",
    "save_intake",
    "screening_flags",
    "status_for_intake",
    "session_record_for",
    "start_new_course",
    "submit_checkin",
    "treated_client_ids",
]
