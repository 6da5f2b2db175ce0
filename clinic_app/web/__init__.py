"""Server-rendered pages: one blueprint per area."""

from __future__ import annotations

from flask import Flask


def register_web(app: Flask) -> None:
    from clinic_app.web import account
    from clinic_app.web import admin
    from clinic_app.web import admin_outbox
    from clinic_app.web import auth
    from clinic_app.web import calendar
    from clinic_app.web import checkin
    from clinic_app.web import client
    from clinic_app.web import client_links
    from clinic_app.web import clients
    from clinic_app.web import dev
    from clinic_app.web import main
    from clinic_app.web import notify
    from clinic_app.web import staff_calendar
    from clinic_app.web import therapist
    from clinic_app.web import waitlist

    for module in (main, auth, account, dev, client, client_links, therapist, admin,
                   admin_outbox, checkin, calendar, notify, staff_calendar, clients, waitlist):
        app.register_blueprint(module.bp)
