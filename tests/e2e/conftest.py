"""Browser tests: a live server on SQLite per module and Debian's Chromium via Playwright.

Run with ``pytest -m e2e``. The browser is ``/usr/bin/chromium`` (or ``CLINIC_TEST_CHROMIUM``);
Playwright's own browser download is not used. The app runs on a frozen clock (Monday
23 November 2026, 08:00 UTC) so that the offered days and times are known.

Accessibility is part of every browser test: ``site.audit(page)`` runs axe-core (vendored in
``assets/``) on the page as it is, at its own width and at phone width, and fails on any
critical or serious violation (colour contrast included). Every page a test's browser shows
must be audited: a page opened through ``new_page`` that reached a URL nobody audited fails the
test at teardown, naming the URL.
"""

from __future__ import annotations

import contextvars
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urldefrag

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
AXE_SOURCE = (Path(__file__).parent / "assets" / "axe.min.js").read_text(encoding="utf-8")
PHONE = {"width": 390, "height": 844}
# Only these impacts fail a test; "moderate" and "minor" findings are advice.
AXE_FAILING_IMPACTS = {"critical", "serious"}
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
        self.audit(page)
        page.get_by_label("Email").fill(email)
        page.get_by_label("Password", exact=True).fill(password)
        page.get_by_role("button", name="Log in").click()
        page.wait_for_load_state()

    @staticmethod
    def audit(page: Page) -> None:
        """Run axe-core on the page as shown, at its own width and at phone width (390 px).

        Fails listing each critical or serious violation with the elements it names. The
        script goes in through ``evaluate`` (the DevTools protocol), so the app's strict CSP
        is left as it is."""
        page.wait_for_load_state("load")
        if not page.evaluate("() => typeof window.axe === 'object'"):
            page.evaluate(f"() => {{ {AXE_SOURCE}\n}}")
        original = page.viewport_size
        is_phone = original is not None and original["width"] <= PHONE["width"]
        sizes = [original] if is_phone else [original, PHONE]
        problems: list[str] = []
        for size in sizes:
            if size:
                page.set_viewport_size(size)
            result = page.evaluate(
                "() => axe.run(document, {resultTypes: ['violations']})"
                ".then(r => r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,"
                " nodes: v.nodes.slice(0, 5).map(n => n.target.join(' ') + ': '"
                " + (n.failureSummary || '').replace(/\\s+/g, ' '))})))")
            width = size["width"] if size else "default"
            problems += [f"[{width}px] {v['impact']} {v['id']}: {v['help']}\n    "
                         + "\n    ".join(v["nodes"])
                         for v in result if v["impact"] in AXE_FAILING_IMPACTS]
        if original:
            page.set_viewport_size(original)
        _audited(page).add(urldefrag(page.url).url)
        assert not problems, f"axe-core on {page.url}:\n" + "\n".join(problems)

    @staticmethod
    def no_sideways_scroll(page: Page) -> None:
        """The rendered page (styles applied) is no wider than its viewport."""
        page.wait_for_load_state("load")
        width = page.evaluate("document.documentElement.scrollWidth")
        limit = page.viewport_size["width"] if page.viewport_size else PHONE["width"]
        assert width <= limit, f"{page.url} is {width}px wide on a {limit}px screen"

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


def _audited(page: Page) -> set[str]:
    """The URLs (without fragment) of this page that ``Site.audit`` has checked."""
    return page.context.__dict__.setdefault("clinic_audited", set())


def _visited(page: Page) -> list[str]:
    """The URLs (without fragment) the page's main frame has shown, in order."""
    return page.context.__dict__.setdefault("clinic_visited", [])


@pytest.fixture
def new_page(chromium: Browser) -> Iterator[Any]:
    """``new_page(**context_options)``: a page in a fresh browser context (own cookies).

    Each page records the URLs it shows; at teardown every one must have been audited with
    ``site.audit(page)`` (see the module docstring)."""
    pages: list[Page] = []

    def make(**options: Any) -> Page:
        context = chromium.new_context(**options)
        context.set_default_timeout(10_000)
        page = context.new_page()
        visited = _visited(page)
        page.on("framenavigated", lambda frame: frame == page.main_frame
                and visited.append(urldefrag(frame.url).url))
        pages.append(page)
        return page

    yield make
    unaudited = [url for page in pages for url in dict.fromkeys(_visited(page))
                 if url not in _audited(page) and url != "about:blank"]
    for page in pages:
        page.context.close()
    assert not unaudited, "pages shown but never checked with site.audit(page):\n" + \
        "\n".join(unaudited)
