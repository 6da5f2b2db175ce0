"""Schemathesis over the OpenAPI document, against a live server, as a client and as a
therapist, on SQLite and PostgreSQL: no response >= 500 and every response matches the
schema the document declares for its status.

Bounded so that it stays a test, not a campaign: a fixed seed (``derandomize``), a few dozen
examples per operation and mode (valid and invalid input), no shrinking. A failure names the
operation and the request that broke it, as curl. This keeps "no 500 for any input" true as
the API grows: a new endpoint is fuzzed the day it is added.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck
from hypothesis import Phase
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.checks import response_schema_conformance

from clinic_app.extensions import db
from clinic_app.services import schedule
from tests.factories import make_user
from tests.factories import now_of
from tests.factories.accounts import token_for
from tests.factories.booking import make_clinic
from tests.factories.booking import raw_booking
from tests.live_server import live_server  # noqa: F401  (fixture)
from tests.live_server import live_server_factory  # noqa: F401  (fixture)

pytestmark = pytest.mark.slow

EXAMPLES_PER_MODE = 12  # per operation: 12 valid and 12 invalid requests
CHECKS = [not_a_server_error, response_schema_conformance]
# Revoking the token in use would turn every later request into a 401 (which is allowed,
# but then nothing else gets tested); it is fuzzed with a token of its own below.
REVOKE = "DELETE /api/v1/auth/tokens/current"


@dataclass
class Failure:
    operation: str
    mode: str
    error: str


def _use_real_ids(case: schemathesis.Case, data: st.DataObject,
                  known_ids: dict[str, list[int]]) -> None:
    """Swap some generated ids for ids of real rows: random 32-bit ids are nearly always 404,
    and the code behind the 404 (dates, states, access rules) is what needs fuzzing."""
    containers = [case.path_parameters, case.query, case.body]
    for container in containers:
        if not isinstance(container, dict):
            continue
        for key, value in list(container.items()):
            if key in known_ids and isinstance(value, int) and data.draw(st.booleans()):
                container[key] = data.draw(st.sampled_from(known_ids[key]))


def _run_operation(operation: Any, mode: GenerationMode, headers: Callable[[], dict],
                   failures: list[Failure], known_ids: dict[str, list[int]] | None = None) -> int:
    """Fuzz one operation; returns the number of requests sent."""
    sent = 0

    @settings(max_examples=EXAMPLES_PER_MODE, derandomize=True, database=None,
              deadline=None, phases=[Phase.explicit, Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy(generation_mode=mode), data=st.data())
    def fuzz(case: schemathesis.Case, data: st.DataObject) -> None:
        nonlocal sent
        sent += 1
        if known_ids and mode is GenerationMode.POSITIVE:
            _use_real_ids(case, data, known_ids)
        response = case.call(headers=headers(), timeout=30)
        case.validate_response(response, checks=CHECKS)

    try:
        fuzz()
    except Unsatisfiable:
        pass  # negative mode, and nothing in the operation can be made invalid (no input)
    except (Exception, BaseExceptionGroup) as exc:  # every failure is collected, then reported
        failures.append(Failure(operation.label, mode.value, str(exc)[:3000]))
    return sent


@dataclass
class Seeded:
    clinic: Any
    known_ids: dict[str, list[int]]


@pytest.fixture
def seeded(app) -> Seeded:
    """A clinic with a client who has a past and an upcoming booking with a therapist, a
    booking of another client, and time off; the ids of all of them."""
    clinic = make_clinic(app)
    start = now_of(app).replace(hour=10, minute=0) + timedelta(days=3)
    upcoming = raw_booking(app, client=clinic.client, therapist=clinic.t1,
                           room=clinic.rooms[0], service=clinic.service, start=start)
    past = raw_booking(app, client=clinic.client, therapist=clinic.t1, room=clinic.rooms[0],
                       service=clinic.service, start=start - timedelta(days=10),
                       status="completed")
    other = raw_booking(app, client=make_user(app), therapist=clinic.t2,
                        room=clinic.rooms[1], service=clinic.service, start=start)
    off = schedule.add_time_off(db.session, clinic.t1, (start + timedelta(days=7)).date())
    db.session.commit()
    return Seeded(clinic, {
        "service_id": [clinic.service.id],
        "therapist_id": [t.id for t in clinic.therapists],
        "booking_id": [upcoming.id, past.id, other.id],
        "client_id": [clinic.client.id],
        "override_id": [off.id],
    })


@pytest.mark.parametrize("role", ["client", "therapist"])
def test_api_has_no_server_errors_and_matches_its_schema(app, seeded, live_server,  # noqa: F811
                                                         role):
    user = seeded.clinic.client if role == "client" else seeded.clinic.t1.user
    auth = token_for(app, user)
    schema = schemathesis.openapi.from_url(live_server.url("/api/v1/openapi.json"))
    schema.config.update(base_url=live_server.url("/"))
    failures: list[Failure] = []
    sent = 0
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 20  # the whole API, not an empty document

    def fresh_token() -> dict:
        return token_for(app, user)

    for operation in operations:
        headers = fresh_token if operation.label == REVOKE else (lambda: auth)
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            sent += _run_operation(operation, mode, headers, failures, seeded.known_ids)
    report = "\n\n".join(f"{f.operation} ({f.mode}):\n{f.error}" for f in failures)
    assert not failures, f"{len(failures)} operations failed after {sent} requests:\n{report}"
    assert sent >= len(operations) * EXAMPLES_PER_MODE


def test_the_checks_catch_a_response_that_breaks_the_document(app, live_server):  # noqa: F811
    """The harness is not vacuous: a document that promises a field the answer lacks fails."""
    document = app.test_client().get("/api/v1/openapi.json").get_json()
    document["components"]["schemas"]["ServicesOut"]["required"] = ["services", "promised"]
    schema = schemathesis.openapi.from_dict(document)
    schema.config.update(base_url=live_server.url("/"))
    (operation,) = [r.ok() for r in schema.get_all_operations()
                    if r.ok().label == "GET /api/v1/services"]
    failures: list[Failure] = []
    sent = _run_operation(operation, GenerationMode.POSITIVE, dict, failures)
    assert sent >= 1 and len(failures) == 1
    assert "promised" in failures[0].error
