"""No account enumeration (issue 9 item 5): sign-up, log-in, reset and sign-in links answer
the same for known and unknown addresses and do the same expensive work on both paths
(argon2 calls, email rendering and the outbox insert). bench/timing.py measures the time."""

from __future__ import annotations

from collections import Counter

import argon2
import pytest
from sqlalchemy import event
from sqlalchemy import func
from sqlalchemy import select

from clinic_app.models import OneTimeToken
from clinic_app.models import OutboxMessage
from tests.factories import make_user

KNOWN = "known@example.com"
UNKNOWN = "unknown@example.com"


@pytest.fixture
def work(monkeypatch):
    """Counts argon2 hashes and verifies, and outbox rows inserted (also rolled-back ones)."""
    counts: Counter[str] = Counter()
    real_hash, real_verify = argon2.PasswordHasher.hash, argon2.PasswordHasher.verify

    def counting_hash(self, *args, **kwargs):
        counts["argon2"] += 1
        return real_hash(self, *args, **kwargs)

    def counting_verify(self, *args, **kwargs):
        counts["argon2"] += 1
        return real_verify(self, *args, **kwargs)

    def outbox_insert(mapper, connection, target):
        counts["outbox_insert"] += 1

    monkeypatch.setattr(argon2.PasswordHasher, "hash", counting_hash)
    monkeypatch.setattr(argon2.PasswordHasher, "verify", counting_verify)
    event.listen(OutboxMessage, "before_insert", outbox_insert)
    yield counts
    event.remove(OutboxMessage, "before_insert", outbox_insert)


# flow: (path, form for an address, status, the work each path does)
FLOWS = {
    "signup": ("/signup", lambda email: {"name": "Sam", "email": email, "consent": "y",
                                         "password": "a-good-long-password"}, 200,
               {"argon2": 1, "outbox_insert": 1}),
    "login": ("/login", lambda email: {"email": email, "password": "wrong-password-1"}, 401,
              {"argon2": 1}),
    "reset": ("/password/forgot", lambda email: {"email": email}, 200, {"outbox_insert": 1}),
    "sign-in link": ("/login/link", lambda email: {"email": email}, 200, {"outbox_insert": 1}),
}


@pytest.mark.parametrize("flow", list(FLOWS))
def test_known_and_unknown_addresses_get_the_same_answer_and_work(app, client, work, flow):
    make_user(app, email=KNOWN)
    path, data, status, expected_work = FLOWS[flow]
    client.post(path, data=data("warm-up@example.com"))  # first-request costs aside
    work.clear()
    known = client.post(path, data=data(KNOWN))
    known_work = dict(work)
    work.clear()
    unknown = client.post(path, data=data(UNKNOWN))
    assert known.status_code == unknown.status_code == status
    assert known.data.replace(KNOWN.encode(), b"") == unknown.data.replace(UNKNOWN.encode(), b"")
    assert known_work == dict(work) == expected_work


@pytest.mark.parametrize("flow", ["reset", "sign-in link"])
def test_the_rehearsal_for_an_unknown_address_leaves_nothing_behind(app, client, db, mailbox,
                                                                    flow):
    path, data, _, _ = FLOWS[flow]
    assert client.post(path, data=data(UNKNOWN)).status_code == 200
    assert db.session.scalar(select(func.count()).select_from(OutboxMessage)) == 0
    assert db.session.scalar(select(func.count()).select_from(OneTimeToken)) == 0
    assert mailbox.deliver() == []


def test_a_deactivated_account_is_treated_like_an_unknown_one(app, client, db, work, mailbox):
    make_user(app, email=KNOWN, is_active=False)
    assert client.post("/password/forgot", data={"email": KNOWN}).status_code == 200
    assert work["outbox_insert"] == 1  # rehearsed, rolled back
    assert mailbox.deliver() == []
