"""Trigger point clinic: booking, scheduling and treatment continuity."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from flask import Flask

from clinic_app.config import DEFAULTS
from clinic_app.config import ConfigError
from clinic_app.config import finalise
from clinic_app.config import read_environment

PACKAGE_DIR = Path(__file__).resolve().parent
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


def resource_dir(name: str) -> str:
    """``templates`` or ``migrations``: beside the package in a checkout, inside it in a wheel."""
    beside = PACKAGE_DIR.parent / name
    inside = PACKAGE_DIR / name
    return str(beside if beside.is_dir() else inside)


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Build the app: defaults, then ``instance/config.py``, then ``CLINIC_*``, then tests."""
    instance_path = os.environ.get("CLINIC_INSTANCE_PATH") or None
    if test_config and test_config.get("INSTANCE_PATH"):
        instance_path = str(test_config["INSTANCE_PATH"])
    app = Flask(
        __name__,
        instance_path=instance_path,
        instance_relative_config=True,
        template_folder=resource_dir("templates"),
        static_folder=str(PACKAGE_DIR / "static"),
    )
    app.config.update(DEFAULTS)
    app.config.from_pyfile("config.py", silent=True)
    read_environment(app.config, os.environ)
    clock = None
    if test_config:
        test_config = dict(test_config)
        clock = test_config.pop("CLOCK", None)
        app.config.update(test_config)
    Path(app.instance_path).mkdir(parents=True, exist_ok=True)
    finalise(app.config, app.instance_path)

    from clinic_app.clock import SystemClock

    app.extensions["clock"] = clock or SystemClock()
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)  # noise per import
    warn_about_insecure_production(app)

    register_extensions(app)
    register_input_limits(app)
    register_blueprints(app)
    register_hooks(app)
    register_commands(app)
    return app


def warn_about_insecure_production(app: Flask) -> None:
    """Production over plain http sends session cookies without ``Secure``: say so at start-up
    (a warning, not an error: a TLS proxy may be in front with the base URL mistyped)."""
    if app.config["ENV"] == "production" and app.config["BASE_URL"].startswith("http://"):
        message = (f"CLINIC_BASE_URL is {app.config['BASE_URL']} (http) in production: cookies "
                   "are sent without Secure and links in emails are not encrypted; use https.")
        logging.getLogger("clinic_app").warning(message)


def register_extensions(app: Flask) -> None:
    from datetime import timedelta

    from clinic_app import models  # noqa: F401  (complete metadata)
    from clinic_app.db import install_transaction_hooks
    from clinic_app.db import install_transaction_modes
    from clinic_app.extensions import csrf
    from clinic_app.extensions import db
    from clinic_app.extensions import limiter
    from clinic_app.extensions import login_manager
    from clinic_app.extensions import migrate
    from clinic_app.mail.backends import backend_from_config

    app.config["REMEMBER_COOKIE_DURATION"] = timedelta(
        days=app.config["REMEMBER_COOKIE_DURATION_DAYS"]
    )
    db.init_app(app)
    with app.app_context():
        install_transaction_hooks(db.engine)
    install_transaction_modes(app)  # GET/HEAD/OPTIONS read without the write lock
    migrate.init_app(app, db, directory=resource_dir("migrations"), render_as_batch=True)
    csrf.init_app(app)
    limiter.init_app(app)
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message = "Please log in to see that page."
    login_manager.session_protection = "basic"
    app.extensions["mail_backend"] = backend_from_config(app.config, app.instance_path)

    from clinic_app.auth import SessionInterface
    from clinic_app.auth import load_user

    login_manager.user_loader(load_user)
    app.session_interface = SessionInterface()

    from clinic_app.throttle import skip_idle_limit_checks
    from clinic_app.throttle import trust_proxies

    trust_proxies(app)
    skip_idle_limit_checks(app)

def register_input_limits(app: Flask) -> None:
    from clinic_app.web.hooks import install_input_limits

    install_input_limits(app)


def register_blueprints(app: Flask) -> None:
    from clinic_app.web import register_web

    register_web(app)
    from clinic_app.api import bp as api_bp
    from clinic_app.extensions import csrf

    csrf.exempt(api_bp)  # bearer tokens, no cookies: CSRF does not apply
    app.register_blueprint(api_bp)


def register_hooks(app: Flask) -> None:
    from clinic_app.web.hooks import install

    install(app)


def register_commands(app: Flask) -> None:
    from clinic_app.cli import register

    register(app)


__all__ = ["ConfigError", "create_app"]
