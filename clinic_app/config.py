"""Configuration: defaults, then the instance folder, then ``CLINIC_*`` variables.

Every setting is read and checked here, once. A bad value stops start-up with a
``ConfigError`` whose message is one line naming the variable.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from limits import parse as parse_limit

from clinic_app.validation import is_iana_zone

MAIL_BACKENDS = ("dev", "smtp")
SMTP_TLS_MODES = ("none", "starttls", "ssl")
ENVIRONMENTS = ("development", "production")

DEFAULTS: dict[str, Any] = {
    "ENV": "development",
    "DATABASE_URL": None,  # None: a SQLite file in the instance folder
    "SECRET_KEY": None,  # None: generated once and kept in the instance folder
    "BASE_URL": "http://127.0.0.1:5000",
    "TIMEZONE": "Europe/London",
    "MAIL_BACKEND": "dev",
    "SMTP_HOST": "localhost",
    "SMTP_PORT": 25,
    "SMTP_USERNAME": None,
    "SMTP_PASSWORD": None,
    "SMTP_TLS": "none",
    "SMTP_TIMEOUT": 15,
    "MAIL_FROM": "Trigger Point Clinic <bookings@clinic.localhost>",
    "RATELIMIT_STORAGE_URL": "memory://",
    "LOGIN_LIMIT_PER_ACCOUNT": "5 per 15 minutes",
    "LOGIN_LIMIT_PER_IP": "30 per 15 minutes",
    "TRUSTED_PROXIES": 0,  # reverse proxies in front whose X-Forwarded-For is believed
    # POST /api/v1/holds needs no log-in: a visitor may hold a few slots, not the diary.
    "HOLD_LIMIT_PER_IP": "20 per 15 minutes",
    "API_TOKEN_DAYS": 30,
    "OUTBOX_MAX_ATTEMPTS": 8,
    "OUTBOX_LEASE_SECONDS": 120,
    "OUTBOX_BATCH_SIZE": 20,  # small: a claimed row waits for the batch before it
    "WORKER_DISPATCH_SECONDS": 5,
    "MAX_REQUEST_BYTES": 1024 * 1024,  # larger requests get 413 before anything reads them
    "EMBEDDED": False,  # True under `clinic up`: enables /dev/mailbox
    "WTF_CSRF_TIME_LIMIT": None,  # tied to the session instead of a timer
    "SESSION_COOKIE_HTTPONLY": True,
    "SESSION_COOKIE_SAMESITE": "Lax",
    "REMEMBER_COOKIE_HTTPONLY": True,
    "REMEMBER_COOKIE_SAMESITE": "Lax",
    "REMEMBER_COOKIE_DURATION_DAYS": 30,
    "SQLALCHEMY_TRACK_MODIFICATIONS": False,
}


class ConfigError(Exception):
    """A configuration value is missing or wrong; the message is one line."""


def _env_name(key: str) -> str:
    return f"CLINIC_{key}"


def read_environment(config: dict[str, Any], environ: os._Environ[str] | dict[str, str]) -> None:
    """Copy ``CLINIC_<KEY>`` variables for known keys into ``config`` as strings."""
    for key in DEFAULTS:
        name = _env_name(key)
        if name in environ:
            config[key] = environ[name]


def _as_int(config: dict[str, Any], key: str, low: int, high: int) -> None:
    raw = config[key]
    try:
        value = int(raw)
    except (TypeError, ValueError):
        raise ConfigError(f"{_env_name(key)}: {raw!r} is not a whole number") from None
    if not low <= value <= high:
        raise ConfigError(f"{_env_name(key)}: {value} is outside {low}..{high}")
    config[key] = value


def _as_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in ("1", "true", "yes", "on")


def finalise(config: dict[str, Any], instance_path: str) -> None:
    """Check every value, fill the embedded defaults and derive Flask's own keys."""
    env = str(config["ENV"]).lower()
    if env not in ENVIRONMENTS:
        raise ConfigError(f"CLINIC_ENV: {env!r} is not one of {', '.join(ENVIRONMENTS)}")
    config["ENV"] = env
    production = env == "production"

    # Database
    url = config.get("DATABASE_URL")
    if not url:
        if production:
            raise ConfigError("CLINIC_DATABASE_URL: required when CLINIC_ENV=production")
        url = "sqlite:///" + str(Path(instance_path) / "clinic.sqlite3")
    url = str(url)
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        # psycopg 3 is the driver we ship; accept the common spelling.
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    if not (url.startswith("sqlite") or url.startswith("postgresql+psycopg://")):
        raise ConfigError(
            "CLINIC_DATABASE_URL: use sqlite:///path or postgresql+psycopg://user@host/db"
        )
    config["DATABASE_URL"] = url
    config["SQLALCHEMY_DATABASE_URI"] = url
    # hide_parameters: a logged database error must not carry notes, reasons or hashes.
    # No pre-ping: it costs a round trip per request; clinic_app.db.install_idle_ping pings
    # only connections that sat idle.
    engine_options: dict[str, Any] = {"pool_pre_ping": False, "hide_parameters": True}
    if url.startswith("sqlite"):
        engine_options = {"connect_args": {"timeout": 30, "check_same_thread": False},
                          "hide_parameters": True}
    config.setdefault("SQLALCHEMY_ENGINE_OPTIONS", engine_options)

    # Secret key
    key = config.get("SECRET_KEY")
    if not key:
        if production:
            raise ConfigError("CLINIC_SECRET_KEY: required when CLINIC_ENV=production")
        key = _instance_secret(instance_path)
    elif len(str(key)) < 16:
        raise ConfigError("CLINIC_SECRET_KEY: too short (use at least 32 random characters)")
    config["SECRET_KEY"] = str(key)

    # Base URL
    base = str(config["BASE_URL"]).rstrip("/")
    parsed = urlparse(base)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ConfigError(f"CLINIC_BASE_URL: {base!r} is not an http(s) URL")
    config["BASE_URL"] = base
    secure = parsed.scheme == "https"
    config["SESSION_COOKIE_SECURE"] = secure
    config["REMEMBER_COOKIE_SECURE"] = secure
    config["PREFERRED_URL_SCHEME"] = parsed.scheme

    # Time zone
    if not is_iana_zone(str(config["TIMEZONE"])):
        raise ConfigError(
            f"CLINIC_TIMEZONE: {str(config['TIMEZONE'])[:80]!r} is not an IANA time zone name"
        )

    # Mail
    backend = str(config["MAIL_BACKEND"]).lower()
    if backend not in MAIL_BACKENDS:
        raise ConfigError(f"CLINIC_MAIL_BACKEND: {backend!r} is not one of dev, smtp")
    config["MAIL_BACKEND"] = backend
    tls = str(config["SMTP_TLS"]).lower()
    if tls not in SMTP_TLS_MODES:
        raise ConfigError(f"CLINIC_SMTP_TLS: {tls!r} is not one of none, starttls, ssl")
    config["SMTP_TLS"] = tls
    _as_int(config, "SMTP_PORT", 1, 65535)
    _as_int(config, "SMTP_TIMEOUT", 1, 600)
    if backend == "smtp" and not config.get("SMTP_HOST"):
        raise ConfigError("CLINIC_SMTP_HOST: required when CLINIC_MAIL_BACKEND=smtp")
    if bool(config.get("SMTP_USERNAME")) != bool(config.get("SMTP_PASSWORD")):
        raise ConfigError("CLINIC_SMTP_PASSWORD: set both CLINIC_SMTP_USERNAME and the password")
    if "@" not in str(config["MAIL_FROM"]):
        raise ConfigError(f"CLINIC_MAIL_FROM: {config['MAIL_FROM']!r} has no email address")

    for key_name, low, high in (
        ("API_TOKEN_DAYS", 1, 365),
        ("OUTBOX_MAX_ATTEMPTS", 1, 100),
        ("OUTBOX_LEASE_SECONDS", 5, 86_400),
        ("OUTBOX_BATCH_SIZE", 1, 10_000),
        ("WORKER_DISPATCH_SECONDS", 1, 3_600),
        ("REMEMBER_COOKIE_DURATION_DAYS", 1, 365),
        ("MAX_REQUEST_BYTES", 1024, 1024**3),
        ("TRUSTED_PROXIES", 0, 10),
    ):
        _as_int(config, key_name, low, high)
    for key_name in ("LOGIN_LIMIT_PER_ACCOUNT", "LOGIN_LIMIT_PER_IP"):
        try:
            parse_limit(str(config[key_name]))
        except ValueError:
            raise ConfigError(
                f"{_env_name(key_name)}: {config[key_name]!r} is not a limit like "
                "'5 per 15 minutes'"
            ) from None
    config["EMBEDDED"] = _as_bool(config["EMBEDDED"])
    config["RATELIMIT_STORAGE_URI"] = str(config["RATELIMIT_STORAGE_URL"])


def _instance_secret(instance_path: str) -> str:
    """Read, or create once, the embedded default's secret key file."""
    path = Path(instance_path) / "secret_key"
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    # Created with owner-only permissions: the key signs sessions.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(key)
    return key
