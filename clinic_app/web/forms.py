"""Account forms. Field checks that need the database live in the services."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import BooleanField
from wtforms import EmailField
from wtforms import PasswordField
from wtforms import StringField
from wtforms import TelField
from wtforms.validators import DataRequired
from wtforms.validators import Length
from wtforms.validators import Optional

from clinic_app.web.fields import SingleLine


class SignupForm(FlaskForm):
    name = StringField("Full name", validators=[DataRequired(), Length(max=120), SingleLine()])
    email = EmailField("Email", validators=[DataRequired(), Length(max=254)])
    phone = TelField("Phone (optional)", validators=[Optional(), Length(max=40), SingleLine()])
    password = PasswordField("Password (at least 10 characters)", validators=[DataRequired()])
    consent = BooleanField("I have read the privacy notice and agree to my data being used "
                           "to run my appointments and treatment.",
                           validators=[DataRequired("Please accept the privacy notice.")])


class LoginForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired()])
    password = PasswordField("Password", validators=[DataRequired()])
    remember = BooleanField("Keep me logged in on this device")


class EmailOnlyForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired()])


class NewPasswordForm(FlaskForm):
    password = PasswordField("New password (at least 10 characters)",
                             validators=[DataRequired()])


class ChangePasswordForm(FlaskForm):
    current_password = PasswordField("Current password", validators=[DataRequired()])
    password = PasswordField("New password (at least 10 characters)",
                             validators=[DataRequired()])


class ChangeEmailForm(FlaskForm):
    new_email = EmailField("New email", validators=[DataRequired()])
    password = PasswordField("Your password", validators=[DataRequired()])


class PreferencesForm(FlaskForm):
    wants_prompts = BooleanField("Send me rebooking suggestions and recall reminders")


class ConfirmForm(FlaskForm):
    """An empty form: just the CSRF token, for buttons that change things."""
