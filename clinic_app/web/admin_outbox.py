"""Pages: the admin's view of failed and dead outbox messages."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("admin_outbox", __name__, url_prefix="/admin/outbox")
