"""web.util.saving: the pages' one try / commit / roll back / show-the-error block."""

from __future__ import annotations

import pytest
from flask import get_flashed_messages
from flask_wtf import FlaskForm
from wtforms import StringField

from clinic_app.errors import NotFound
from clinic_app.errors import ValidationFailed
from clinic_app.models import User
from clinic_app.web.util import saving
from tests.factories.accounts import make_user


class NameForm(FlaskForm):
    name = StringField("Name")


def _form() -> NameForm:
    return NameForm(meta={"csrf": False})


def _rename(db, user_id: int, name: str) -> None:
    db.session.get(User, user_id).name = name


def _name_after_rollback(db, user_id: int) -> str:
    """The name as stored: what a later rollback cannot take back."""
    db.session.rollback()
    return db.session.get(User, user_id).name


def test_a_block_that_ends_is_committed(app, db):
    user = make_user(app, name="Before")
    with app.test_request_context("/", method="POST"):
        with saving(_form()) as saved:
            _rename(db, user.id, "After")
        assert saved and saved.error is None
        assert _name_after_rollback(db, user.id) == "After"
        assert get_flashed_messages() == []


def test_a_domain_error_is_rolled_back_and_shown_beside_its_field(app, db):
    user = make_user(app, name="Before")
    form = _form()
    with app.test_request_context("/", method="POST"):
        with saving(form) as saved:
            _rename(db, user.id, "After")
            raise ValidationFailed("Check the name.", fields={"name": "Too short."})
        assert not saved and saved.error is not None and saved.error.message == "Check the name."
        assert form.name.errors == ["Too short."] and form.form_errors == []
        assert _name_after_rollback(db, user.id) == "Before"
        assert get_flashed_messages() == []  # the form shows it; no flash as well


def test_an_error_without_a_known_field_goes_to_the_top_of_the_form(app, db):
    form = _form()
    with app.test_request_context("/", method="POST"):
        with saving(form) as saved:
            raise ValidationFailed("Try again later.", fields={"nosuchfield": "x"})
        assert not saved and form.form_errors == ["Try again later."]


def test_without_a_form_the_error_is_flashed(app, db):
    user = make_user(app, name="Before")
    with app.test_request_context("/", method="POST"):
        with saving() as saved:
            _rename(db, user.id, "After")
            raise NotFound("No such booking.")
        assert not saved
        assert get_flashed_messages(with_categories=True) == [("error", "No such booking.")]
        assert _name_after_rollback(db, user.id) == "Before"


@pytest.mark.parametrize("error", [NotFound("Gone."), RuntimeError("bug")])
def test_other_errors_propagate_uncommitted(app, db, error):
    user = make_user(app, name="Before")
    form = _form()
    with app.test_request_context("/", method="POST"):
        with pytest.raises(type(error)), saving(form, catch=ValidationFailed):
            _rename(db, user.id, "After")
            raise error
        assert not form.name.errors and not form.form_errors
        assert _name_after_rollback(db, user.id) == "Before"
