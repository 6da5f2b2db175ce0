"""The ``clinic`` command (a FlaskGroup: ``flask --app wsgi ...`` works the same)."""

from __future__ import annotations

import os
import signal
import sys

import click
from flask import Flask
from flask import current_app
from flask.cli import FlaskGroup
from flask.cli import with_appcontext

from clinic_app.config import ConfigError


def _create() -> Flask:
    # Imported here: clinic_app imports this module while building the app (import cycle).
    from clinic_app import create_app

    return create_app()


def register(app: Flask) -> None:
    """Attach the project's commands to ``app.cli`` (so ``flask --app wsgi`` has them)."""
    for command in (seed_demo, create_admin, worker):
        app.cli.add_command(command)
    app.cli.add_command(up)


def _now():  # type: ignore[no-untyped-def]
    return current_app.extensions["clock"].now()


@click.command("seed-demo")
@with_appcontext
def seed_demo() -> None:
    """Add the demo clinic, therapists, services and logins (idempotent)."""
    # Imported here: clinic_app imports this module while building the app (import cycle).
    from clinic_app.extensions import db
    from clinic_app.services.demo import seed

    created = seed(db.session, _now())
    db.session.commit()
    click.echo("Demo data added." if created else "Demo data already present; nothing changed.")


@click.command("create-admin")
@click.option("--email", prompt=True, help="The admin's email address.")
@click.option("--name", default="Clinic admin", show_default=True)
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True,
              help="At least 10 characters.")
@with_appcontext
def create_admin(email: str, name: str, password: str) -> None:
    """Create an admin account (or make an existing account admin)."""
    # Imported here: clinic_app imports this module while building the app (import cycle).
    from clinic_app.errors import DomainError
    from clinic_app.extensions import db
    from clinic_app.services.accounts import create_admin as make

    try:
        user = make(db.session, email=email, name=name, password=password, now=_now())
    except DomainError as exc:
        db.session.rollback()
        raise click.ClickException(exc.message) from None
    db.session.commit()
    click.echo(f"Admin ready: {user.email}")


@click.command("worker")
@with_appcontext
def worker() -> None:
    """Run the notification worker (one process; stops cleanly on SIGTERM/Ctrl-C)."""
    # Imported here: clinic_app imports this module while building the app (import cycle).
    from clinic_app.worker import run_blocking

    run_blocking(current_app._get_current_object())  # type: ignore[attr-defined]


@click.command("up")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", default=5000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--threads", default=8, show_default=True, type=click.IntRange(1, 64))
def up(host: str, port: int, threads: int) -> None:
    """Run everything in one process: migrate, seed demo data into an empty
    database, serve the web app with waitress and run one notification worker."""
    # Imported here: clinic_app imports this module while building the app (import cycle),
    # and waitress / flask_migrate are only needed by this command.
    from flask_migrate import upgrade
    from waitress import serve

    from clinic_app import create_app
    from clinic_app.extensions import db
    from clinic_app.services.demo import DEMO_LOGINS
    from clinic_app.services.demo import is_empty
    from clinic_app.services.demo import seed
    from clinic_app.worker import start_background

    overrides: dict[str, object] = {"EMBEDDED": True}
    if "CLINIC_BASE_URL" not in os.environ:
        shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host  # noqa: S104
        overrides["BASE_URL"] = f"http://{shown}:{port}"
    try:
        app = create_app(overrides)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    with app.app_context():
        upgrade()
        if is_empty(db.session):
            seed(db.session, app.extensions["clock"].now())
            db.session.commit()
            click.echo("Seeded the demo clinic.")
        db.session.remove()
    scheduler = start_background(app)
    url = app.config["BASE_URL"]
    click.echo(f"\nClinic running at {url}  (Ctrl-C or SIGTERM to stop)")
    click.echo("Demo logins (password for all: " + DEMO_LOGINS["password"] + "):")
    for role, email in DEMO_LOGINS["accounts"]:
        click.echo(f"  {role:<10} {email}")
    click.echo(f"Dev mailbox: {url}/dev/mailbox (log in as the admin)\n")
    # SIGTERM (a service manager, `kill`) stops like Ctrl-C: the handler raises in the
    # main thread, out of waitress's loop, into the clean shutdown below. SIGINT is set
    # too: a process started in the background of a non-interactive shell (`clinic up &`
    # in a script, CI) inherits SIGINT *ignored*, and Python then never installs its
    # Ctrl-C handler, so an interrupt would be lost and the service would not stop.
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)
    try:
        serve(app, host=host, port=port, threads=threads, ident="clinic")
    except KeyboardInterrupt:
        pass
    finally:
        scheduler.shutdown(wait=False)
        click.echo("Stopped.")


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


class ClinicGroup(FlaskGroup):
    def main(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        try:
            return super().main(*args, **kwargs)
        except ConfigError as exc:
            click.echo(f"Configuration error: {exc}", err=True)
            sys.exit(2)


@click.group(cls=ClinicGroup, create_app=_create, add_version_option=False,
             load_dotenv=False)
def main() -> None:
    """Trigger point clinic: booking, scheduling and treatment continuity.

    Start with `clinic up`. Configuration comes from CLINIC_* environment
    variables (see the README).
    """


# `up` is on the group itself too, so `clinic up` does not build a second app first.
main.add_command(up)
