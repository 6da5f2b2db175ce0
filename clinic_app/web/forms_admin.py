"""Admin back-office forms. Rules that need the database live in services.admin."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import BooleanField
from wtforms import DateField
from wtforms import DecimalField
from wtforms import EmailField
from wtforms import IntegerField
from wtforms import SelectField
from wtforms import StringField
from wtforms import TextAreaField
from wtforms.validators import DataRequired
from wtforms.validators import InputRequired
from wtforms.validators import Length
from wtforms.validators import Optional

from clinic_app.web.fields import CheckboxList
from clinic_app.web.fields import InDateWindow
from clinic_app.web.fields import Pence
from clinic_app.web.fields import SingleLine
from clinic_app.web.fields import opts


class ServiceForm(FlaskForm):
    name = StringField("Name", validators=[DataRequired(), Length(max=120), SingleLine()])
    description = TextAreaField("Description", validators=[Optional(), Length(max=2000)])
    duration_minutes = IntegerField("Length (minutes)", validators=[InputRequired()])
    buffer_before_minutes = IntegerField("Buffer before (minutes)", default=0,
                                         validators=[InputRequired()])
    buffer_after_minutes = IntegerField("Buffer after (minutes)", default=15,
                                        validators=[InputRequired()])
    price = DecimalField("Price (£)", places=2, validators=[InputRequired(), Pence()])
    active = BooleanField("Open for booking", default=True)
    is_first_visit = BooleanField("First-visit service (assessment)")
    therapist_ids = CheckboxList("Therapists who offer it", coerce=int)
    room_ids = CheckboxList("Rooms it can use", coerce=int)


class RoomForm(FlaskForm):
    name = StringField("Room name", validators=[DataRequired(), Length(max=80), SingleLine()])
    active = BooleanField("In use", default=True)


class InviteForm(FlaskForm):
    name = StringField("Name", validators=[DataRequired(), Length(max=120), SingleLine()])
    email = EmailField("Email", validators=[DataRequired(), Length(max=254)])


class SettingsForm(FlaskForm):
    name = StringField("Clinic name", validators=[DataRequired(), Length(max=120), SingleLine()])
    address = StringField("Address", validators=[Optional(), Length(max=255), SingleLine()])
    phone = StringField("Phone", validators=[Optional(), Length(max=40), SingleLine()])
    timezone = StringField("Time zone (IANA, e.g. Europe/London)",
                           validators=[DataRequired(), Length(max=64)])
    min_notice_minutes = IntegerField("Minimum notice for a booking (minutes)",
                                      validators=[InputRequired()])
    horizon_days = IntegerField("Booking horizon (days ahead)", validators=[InputRequired()])
    slot_step_minutes = IntegerField("Start times every (minutes)", validators=[InputRequired()])
    cancel_cutoff_hours = IntegerField("Free cancellation up to (hours before)",
                                       validators=[InputRequired()])
    max_upcoming_per_client = IntegerField("Most upcoming bookings per client",
                                           validators=[InputRequired()])
    reminder_offsets_hours = StringField("Reminders (hours before, comma-separated)",
                                         validators=[DataRequired()])
    retention_years = IntegerField("Keep health records for (years)",
                                   validators=[InputRequired()])
    offer_minutes = IntegerField("A waitlist offer holds the slot for (minutes)",
                                 validators=[InputRequired()])


class ClosureForm(FlaskForm):
    start_date = DateField("First closed day", validators=[InputRequired(), InDateWindow()])
    end_date = DateField("Last closed day", validators=[InputRequired(), InDateWindow()])
    reason = StringField("Reason (shown to staff)",
                         validators=[Optional(), Length(max=120), SingleLine()])


class BookingFilterForm(FlaskForm):
    """GET filters for the bookings list (no CSRF: it changes nothing)."""

    class Meta:
        csrf = False

    date_from = DateField("From", validators=[Optional(), InDateWindow()])
    date_to = DateField("To", validators=[Optional(), InDateWindow()])
    therapist = SelectField("Therapist", coerce=str, validators=[Optional()])
    status = SelectField("Status", validators=[Optional()], choices=opts([
        ("", "Any status"), ("pending", "Pending"), ("booked", "Booked"),
        ("completed", "Completed"), ("cancelled", "Cancelled"), ("no_show", "No-show"),
    ]))
    q = StringField("Client name or email", validators=[Optional(), Length(max=100), SingleLine()])


class WeekForm(FlaskForm):
    """The dashboard's week chooser (GET, no CSRF: it changes nothing); any day of the week."""

    class Meta:
        csrf = False

    week = DateField("Show the week of", validators=[Optional(), InDateWindow()])


class OnBehalfForm(FlaskForm):
    """Step one of booking for a client: who and what (GET, no CSRF)."""

    class Meta:
        csrf = False

    client = SelectField("Client", coerce=str, validators=[DataRequired()])
    service = SelectField("Service", coerce=str, validators=[DataRequired()])
    therapist = SelectField("Therapist", coerce=str, validators=[Optional()])
