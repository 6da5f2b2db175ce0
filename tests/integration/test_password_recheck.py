"""accounts.require_password: the password asked again before a sensitive change (a new
password, a new email address, closing the account) — one rule, the same refusal."""

from __future__ import annotations

import pytest
from sqlalchemy import func
from sqlalchemy import select

from clinic_app.errors import ValidationFailed
from clinic_app.models import OutboxMessage
from clinic_app.services import accounts
from tests.factories.accounts import PASSWORD
from tests.factories.accounts import make_user
from tests.factories.accounts import now_of


def test_the_right_password_passes(app, db):
    user = make_user(app)
    accounts.require_password(user, PASSWORD)
    accounts.require_password(user, PASSWORD, field="current_password", message="Wrong.")


@pytest.mark.parametrize("given", ["wrong", "", None, PASSWORD.upper()])
def test_a_wrong_or_missing_password_is_refused_on_its_field(app, db, given):
    user = make_user(app)
    with pytest.raises(ValidationFailed) as caught:
        accounts.require_password(user, given)
    assert caught.value.code == "bad_credentials"
    assert caught.value.message == "Your password is wrong."
    assert caught.value.fields == {"password": "Your password is wrong."}
    with pytest.raises(ValidationFailed) as caught:
        accounts.require_password(user, given, field="current_password", message="Wrong.")
    assert caught.value.fields == {"current_password": "Wrong."}


def test_an_account_without_a_password_is_always_refused(app, db):
    user = make_user(app, password_hash=None)
    with pytest.raises(ValidationFailed):
        accounts.require_password(user, "")


def test_changing_the_password_asks_for_the_current_one(app, db):
    user = make_user(app)
    before = user.password_hash
    with pytest.raises(ValidationFailed) as caught:
        accounts.change_password(db.session, user, "wrong", "a-new-long-password", now_of(app))
    assert caught.value.code == "bad_credentials"
    assert caught.value.fields == {"current_password": "Your current password is wrong."}
    assert user.password_hash == before


def test_changing_the_email_asks_for_the_password_and_sends_nothing(app, db):
    user = make_user(app)
    outbox = select(func.count()).select_from(OutboxMessage)
    sent_before = db.session.scalar(outbox)
    with pytest.raises(ValidationFailed) as caught:
        accounts.request_email_change(db.session, user, "new@example.com", "wrong",
                                      now_of(app))
    assert caught.value.code == "bad_credentials"
    assert caught.value.fields == {"password": "Your password is wrong."}
    assert db.session.scalar(outbox) == sent_before
    accounts.request_email_change(db.session, user, "new@example.com", PASSWORD, now_of(app))
    assert db.session.scalar(outbox) == sent_before + 1
