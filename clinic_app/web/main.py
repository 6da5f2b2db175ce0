"""Home page and health check."""

from __future__ import annotations

from flask import Blueprint
from flask import jsonify
from flask import render_template
from sqlalchemy import select
from sqlalchemy import text

from clinic_app.extensions import db
from clinic_app.models.schedule import Service

bp = Blueprint("main", __name__)


@bp.get("/")
def home() -> str:
    services = db.session.scalars(
        select(Service).where(Service.active.is_(True)).order_by(Service.duration_minutes)
    ).all()
    return render_template("home.html", services=services)


@bp.get("/privacy")
def privacy() -> str:
    return render_template("privacy.html")


@bp.get("/healthz")
def healthz():  # type: ignore[no-untyped-def]
    """200 only when the database answers."""
    try:
        db.session.execute(text("SELECT 1"))
        db.session.rollback()
    except Exception:  # noqa: BLE001 - any database failure means unhealthy
        db.session.rollback()
        return jsonify({"status": "error", "database": "unreachable"}), 503
    return jsonify({"status": "ok", "database": "ok"})
