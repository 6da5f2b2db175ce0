"""Test factories, one module per model area; the common ones are re-exported here.

* ``accounts``: ``PASSWORD``, ``now_of``, ``make_user``, ``token_for`` (API), ``login`` (pages)
* ``schedule``: ``make_therapist``, ``make_room``, ``make_service``, ``local``, ``LONDON``,
  ``EVERY_DAY``
* ``booking``: ``make_booking`` (the one booking factory: placed by the booking service, so
  its blocked interval comes from the service's buffers), ``Clinic`` / ``make_clinic`` (two
  therapists, two rooms)
* ``care``: ``recorded_session``, ``complete``, ``checkin_path``, ``add_checkin``,
  ``add_recommendation``
* ``notify``: ``Clinic`` / ``make_clinic`` (one of each), ``make_booking`` with its messages
  planned, ``cancel`` and ``move`` through the booking service, ``run_job``, ``rows``,
  ``outbox_row`` (a row left sent, failed, dead or retired), an SMTP ``Sink``
* ``pages``: ``Clinic`` / ``make_clinic`` for the page tests (an admin, two therapists, two
  clients)
* ``waitlist``: ``make_scene`` (a cancelled slot, three clients waiting for it, ranked),
  ``join``, ``give_window``, ``cancel_and_offer``

Factories commit, like the code under test; in the default (savepoint) test mode every commit
is rolled back at the end of the test (see ``tests/conftest.py``).
"""

from tests.factories.accounts import PASSWORD
from tests.factories.accounts import make_user
from tests.factories.accounts import now_of
from tests.factories.booking import make_booking
from tests.factories.schedule import make_room
from tests.factories.schedule import make_service
from tests.factories.schedule import make_therapist

__all__ = [
    "PASSWORD",
    "make_booking",
    "make_room",
    "make_service",
    "make_therapist",
    "make_user",
    "now_of",
]
