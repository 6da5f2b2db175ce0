"""Browser tests: a live server on SQLite per module and Debian's Chromium via Playwright.

Run with ``pytest -m e2e``. The browser is ``/usr/bin/chromium`` (or ``CLINIC_TEST_CHROMIUM``);
Playwright's own browser download is not used. The app runs on a frozen clock (Monday
23 November 2026, 08:00 UTC) so that the offered days and times are known.
"""

from __future__ import annotations

import contextvars
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser
from playwright.sync_api import Page
from playwright.sync_api import sync_playwright

from clinic_app import create_app
from clinic_app.clock import FrozenClock
from clinic_app.extensions import db
from tests.conftest import START
from tests.factories import PASSWORD
from tests.live_server import LiveServer
from tests.live_server import start_live_server

# The README's screenshots are refreshed with CLINIC_UPDATE_SCREENSHOTS=1; other runs write
# them to a scratch folder, so a test run does not change tracked files.
SCREENSHOTS = (
    Path(__file__).resolve().parents[2] / "docs" / "screenshots"
    if os.environ.get("CLINIC_UPDATE_SCREENSHOTS") == "1"
    else Path(tempfile.gettempdir()) / "clinic-screenshots"
)
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


class Site:
    """The running app plus helpers: URLs, emails, log-in, screenshots."""

    def __init__(self, app: Any, server: LiveServer) -> None:
        self.app = app
        self.server = server

    def url(self, path: str) -> str:
        return self.server.url(path)

    def deliver_mail(self) -> None:
        """Run the outbox dispatcher once (the worker's job), as the worker would."""
        from clinic_app.worker import dispatch_outbox_job

        contextvars.Context().run(dispatch_outbox_job, self.app)

    def links_to(self, address: str, contains: str) -> list[str]:
        self.deliver_mail()
        box = self.app.extensions["mail_backend"]
        found: list[str] = []
        for _, message in box.messages():
            if address.lower() in str(message["To"]).lower():
                body = message.get_body(preferencelist=("plain",))
                found += re.findall(r"https?://\S+", body.get_content() if body else "")
        return [u for u in found if contains in u]

    def log_in(self, page: Page, email: str, password: str = PASSWORD) -> None:
        page.goto(self.url("/login"))
        page.get_by_label("Email").fill(email)
        page.get_by_label("Password", exact=True).fill(password)
        page.get_by_role("button", name="Log in").click()
        page.wait_for_load_state()

    @staticmethod
    def shot(page: Page, name: str) -> None:
        """Save a full-page screenshot ``<name>.png`` in SCREENSHOTS (overwritten each run)."""
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """A fresh SQLite app served on 127.0.0.1 (OS-chosen port) for the whole module."""
    tmp = tmp_path_factory.mktemp("e2e")
    app = create_app({
        "TESTING": True,
        "DATABASE_URL": f"sqlite:///{tmp / 'e2e.sqlite3'}",
        "INSTANCE_PATH": str(tmp / "instance"),
        "DEV_MAILBOX_DIR": str(tmp / "mailbox"),
        "SECRET_KEY": "e2e-secret-key-that-is-long-enough",
        "BASE_URL": "http://127.0.0.1",
        "MAIL_BACKEND": "dev",
        "RATELIMIT_STORAGE_URL": "memory://",
        "EMBEDDED": True,
        "CLOCK": FrozenClock(START),
    })
    with app.app_context():
        db.create_all()
        db.session.commit()
    server = start_live_server(app)
    # Links in emails must point at this server.
    app.config["BASE_URL"] = server.base_url
    ctx = app.app_context()
    ctx.push()
    try:
        yield Site(app, server)
    finally:
        db.session.remove()
        ctx.pop()
        server.stop()
        with app.app_context():
            db.engine.dispose()


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    """Debian's Chromium, headless. Missing: a skip on a laptop, a failure in CI
    (``CLINIC_TEST_REQUIRE_BROWSER=1``, set by .ci/run)."""
    executable = os.environ.get("CLINIC_TEST_CHROMIUM", "/usr/bin/chromium")
    if not os.path.exists(executable):
        message = f"browser tests need Chromium at {executable} (apt-get install chromium)"
        if os.environ.get("CLINIC_TEST_REQUIRE_BROWSER") == "1":
            pytest.fail(message)
        pytest.skip(message)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def new_page(chromium: Browser) -> Iterator[Any]:
    """``new_page(**context_options)``: a page in a fresh browser context (own cookies)."""
    contexts = []

    def make(**options: Any) -> Page:
        context = chromium.new_context(**options)
        context.set_default_timeout(10_000)
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()
