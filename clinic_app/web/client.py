"""Pages: client."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("client", __name__)
