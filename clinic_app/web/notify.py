"""Unsubscribe from non-essential messages with the signed link in the email (no log-in).

``GET /unsubscribe/<token>`` shows a confirmation button: link scanners and mail
previews fetch links, so a GET changes nothing. ``POST`` turns the messages off; it is
also the RFC 8058 one-click target of the ``List-Unsubscribe`` header, which mail
clients post without cookies, hence no CSRF token: the signed token is the authority.
"""

from __future__ import annotations

from flask import Blueprint
from flask import render_template

from clinic_app.extensions import csrf
from clinic_app.extensions import db
from clinic_app.services.notify import links as notifications

bp = Blueprint("notify", __name__)


@bp.get("/unsubscribe/<token>")
def unsubscribe_form(token: str) -> tuple[str, int]:
    user = notifications.user_from_unsubscribe_token(db.session, token)
    if user is None:
        return render_template("notify/unsubscribe.html", state="invalid"), 400
    state = "confirm" if user.wants_prompts else "done"
    return render_template("notify/unsubscribe.html", state=state, token=token), 200


@bp.post("/unsubscribe/<token>")
@csrf.exempt
def unsubscribe(token: str) -> tuple[str, int]:
    user = notifications.user_from_unsubscribe_token(db.session, token)
    if user is None:
        return render_template("notify/unsubscribe.html", state="invalid"), 400
    notifications.unsubscribe(db.session, user)
    db.session.commit()
    return render_template("notify/unsubscribe.html", state="done"), 200
