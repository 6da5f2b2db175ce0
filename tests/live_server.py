"""A real, threaded HTTP server around a test app, for tests that need real concurrency or a
real browser.

Use the fixtures in a test module (or a conftest) by importing them::

    from tests.live_server import live_server  # noqa: F401  (fixture)
    from tests.live_server import live_server_factory  # noqa: F401  (fixture)

    def test_home(live_server):
        response = urllib.request.urlopen(live_server.url("/"))

``live_server`` serves the ``app`` fixture (so it runs on SQLite and PostgreSQL like every
``app`` test); ``live_server_factory(app)`` serves any app you build yourself. Servers listen on
127.0.0.1 with a port chosen by the OS and stop when the test ends.

The server is Werkzeug's ``ThreadedWSGIServer``: one thread per request, so N simultaneous
requests really run at the same time (waitress would queue them behind its few worker
threads). Each request gets its own app context and database session, as in production.

SQLite: every transaction there begins ``IMMEDIATE`` (it takes the write lock), so commit or
roll back the test's own session (``db.session.commit()``) before sending requests, or the
server's requests wait for the lock.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from collections.abc import Iterator
from dataclasses import dataclass
from dataclasses import field
from typing import Any

import pytest
from flask import Flask
from flask import has_app_context
from werkzeug.serving import BaseWSGIServer
from werkzeug.serving import make_server


@dataclass
class LiveServer:
    """A running server: ``base_url`` is ``http://127.0.0.1:<port>``."""

    app: Flask
    server: BaseWSGIServer
    thread: threading.Thread
    host: str = "127.0.0.1"
    port: int = 0
    _stopped: bool = field(default=False, repr=False)

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def url(self, path: str = "/") -> str:
        """The absolute URL of ``path`` on this server."""
        return self.base_url + ("" if path.startswith("/") else "/") + path

    def stop(self) -> None:
        """Stop accepting requests, finish the running ones and close the socket."""
        if self._stopped:
            return
        self._stopped = True
        self.server.shutdown()
        self.thread.join(timeout=10)
        self.server.server_close()


def start_live_server(app: Flask, *, host: str = "127.0.0.1", quiet: bool = True) -> LiveServer:
    """Serve ``app`` in a background thread on ``host`` and an OS-chosen port; returns at once,
    with the socket already listening (requests may be sent immediately).

    ``quiet`` silences Werkzeug's one-line-per-request access log.
    """
    if quiet:
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = make_server(host, 0, app, threaded=True)
    # Werkzeug listens with a backlog of 128 (LISTEN_QUEUE), deep enough for bursts of
    # simultaneous clients; socketserver's default of 5 would refuse some.
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05},
        name=f"live-server-{server.server_port}", daemon=True,
    )
    thread.start()
    return LiveServer(app=app, server=server, thread=thread, host=host, port=server.server_port)


def _end_test_transaction() -> None:
    """Commit the test's session, if any, so the server sees its data and SQLite is unlocked."""
    if has_app_context():
        from clinic_app.extensions import db

        db.session.commit()


@pytest.fixture
def live_server_factory() -> Iterator[Callable[[Flask], LiveServer]]:
    """A function ``start(app) -> LiveServer``; every server it started stops after the test.

    ``start`` first commits the test's own session when an app context is active (see the
    module docstring: an open SQLite transaction would hold the write lock).
    """
    started: list[LiveServer] = []

    def start(app: Flask, **kwargs: Any) -> LiveServer:
        _end_test_transaction()
        server = start_live_server(app, **kwargs)
        started.append(server)
        return server

    yield start
    for server in reversed(started):
        server.stop()


@pytest.fixture
def live_server(app: Flask, live_server_factory: Callable[[Flask], LiveServer]) -> LiveServer:
    """The ``app`` fixture served over HTTP (on SQLite and on PostgreSQL).

    The test's own session is committed first, so that data created before asking for this
    fixture is visible to the server and SQLite's write lock is free.
    """
    return live_server_factory(app)
