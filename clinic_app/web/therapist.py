"""Pages: therapist."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("therapist", __name__)
