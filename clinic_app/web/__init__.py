"""Server-rendered pages: one blueprint per area."""

from __future__ import annotations

from flask import Flask


def register_web(app: Flask) -> None:
    from clinic_app.web.account import bp as account_bp
    from clinic_app.web.auth import bp as auth_bp
    from clinic_app.web.dev import bp as dev_bp
    from clinic_app.web.main import bp as main_bp

    for bp in (main_bp, auth_bp, account_bp, dev_bp):
        app.register_blueprint(bp)
