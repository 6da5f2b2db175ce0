"""The dev mailbox: what the ``dev`` mail backend kept, for admins, embedded mode only."""

from __future__ import annotations

import re

from flask import Blueprint
from flask import abort
from flask import current_app
from flask import render_template
from markupsafe import Markup
from markupsafe import escape

from clinic_app.auth import roles_required
from clinic_app.mail.backends import DevMailbox

bp = Blueprint("dev", __name__, url_prefix="/dev")

_URL = re.compile(r"https?://[^\s<>\"]+")


def _mailbox() -> DevMailbox:
    backend = current_app.extensions["mail_backend"]
    if not current_app.config["EMBEDDED"] or not isinstance(backend, DevMailbox):
        abort(404)
    return backend


def _linkify(text: str) -> Markup:
    """Plain text with its URLs made clickable (everything else escaped)."""
    out, last = [], 0
    for match in _URL.finditer(text):
        out.append(escape(text[last:match.start()]))
        url = match.group(0)
        out.append(Markup('<a href="{0}">{0}</a>').format(url))
        last = match.end()
    out.append(escape(text[last:]))
    return Markup("").join(out)


@bp.get("/mailbox")
@roles_required("admin")
def mailbox() -> str:
    messages = list(reversed(_mailbox().messages()))
    return render_template("dev/mailbox.html", messages=messages)


@bp.get("/mailbox/<ident>")
@roles_required("admin")
def message(ident: str) -> str:
    msg = _mailbox().get(ident)
    if msg is None:
        abort(404)
    body = msg.get_body(preferencelist=("plain",))
    text = body.get_content() if body is not None else ""
    attachments = [part.get_filename() for part in msg.iter_attachments()]
    return render_template("dev/message.html", msg=msg, body=_linkify(text),
                           attachments=attachments)
