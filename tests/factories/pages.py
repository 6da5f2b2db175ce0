"""The page tests' clinic (integration and browser): an admin, two therapists, two clients.

``make_booking`` and ``login`` are re-exported from ``booking`` and ``accounts``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from clinic_app.models import Room
from clinic_app.models import Service
from clinic_app.models import Therapist
from clinic_app.models import User
from tests.factories.accounts import login
from tests.factories.accounts import make_user
from tests.factories.booking import make_booking
from tests.factories.schedule import make_room
from tests.factories.schedule import make_service
from tests.factories.schedule import make_therapist

__all__ = ["Clinic", "login", "make_booking", "make_clinic"]


@dataclass
class Clinic:
    admin: User
    therapist: Therapist
    other_therapist: Therapist
    room: Room
    service: Service
    client: User
    other_client: User


def make_clinic(app: Any) -> Clinic:
    """An admin, two therapists (Mon-Sat 09-12, 13-17), a room, a 60-min service, two clients."""
    admin = make_user(app, role="admin", name="Ada Admin")
    therapist = make_therapist(app, name="Maya Therapist")
    other = make_therapist(app, name="Tom Therapist")
    room = make_room(app, "Room A")
    service = make_service(app, therapists=[therapist, other], rooms=[room],
                           name="Trigger point 60", price_cents=6500)
    client = make_user(app, name="Casey Client")
    other_client = make_user(app, name="Olive Other")
    return Clinic(admin, therapist, other, room, service, client, other_client)
