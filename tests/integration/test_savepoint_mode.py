"""The test database modes of ``tests/conftest.py``: what a test commits does not outlive it.

The two ``*_leaves_nothing`` tests run in file order: the first commits rows (its own session
and a request's), the second sees none of them.
"""

from __future__ import annotations

import pytest
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy.engine import Connection

from clinic_app.models import User
from tests.factories import PASSWORD
from tests.factories import make_user

MARKER_EMAIL = "left-behind@example.com"


def _users(db) -> int:
    return db.session.scalar(select(func.count(User.id)))


def test_commits_release_savepoints_inside_one_outer_transaction(app, db):
    bind = db.session.get_bind()
    assert isinstance(bind, Connection) and bind.in_transaction()
    make_user(app, email=MARKER_EMAIL)  # commits
    assert bind.in_transaction()
    assert db.session.scalar(select(User.id).where(User.email == MARKER_EMAIL)) is not None


def test_a_request_and_the_test_share_what_was_committed(app, db, client):
    user = make_user(app, email="signed-up@example.com")
    response = client.post("/login", data={"email": user.email, "password": PASSWORD})
    assert response.status_code == 302  # the request saw the test's committed user
    client.post("/logout")
    response = client.post("/signup", data={"name": "Reqa", "email": "from-request@example.com",
                                            "password": "a-good-long-password", "consent": "y"})
    assert response.status_code == 200
    # The request's session committed on the same connection: the test sees its row.
    assert db.session.scalar(select(User.id).where(User.email == "from-request@example.com"))


def test_a_later_test_finds_the_tables_empty(app, db):
    assert _users(db) == 0


def test_rollback_returns_to_the_last_commit(app, db):
    make_user(app, email="kept@example.com")
    db.session.add(User(email="dropped@example.com", name="Dropped", role="client",
                        created_at=app.extensions["clock"].now()))
    db.session.flush()
    db.session.rollback()
    emails = set(db.session.scalars(select(User.email)))
    assert emails == {"kept@example.com"}


@pytest.mark.real_db
def test_real_db_tests_commit_for_real_and_are_slow(app, db, request):
    assert request.node.get_closest_marker("slow") is not None
    make_user(app, email=MARKER_EMAIL)
    # A second connection (as a server thread or a worker process would open) sees the row.
    with db.engine.connect() as other:
        assert other.scalar(select(func.count(User.id))) == 1


def test_after_a_real_db_test_the_tables_are_empty_again(app, db):
    assert _users(db) == 0
