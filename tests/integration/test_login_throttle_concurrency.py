"""The log-in budgets under a burst (issue 9 item 4): 40 attempts at once against a real
threaded server give exactly the budget's number of password checks, with the counters in
memory and in Redis (what several gunicorn workers share)."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.factories import make_user
from tests.live_server import live_server  # noqa: F401  (fixture)
from tests.live_server import live_server_factory  # noqa: F401  (fixture)

pytestmark = pytest.mark.slow

BURST = 40
BUDGET = 5


@pytest.fixture(params=["memory://", "redis://127.0.0.1:6379/15"], ids=["memory", "redis"])
def app_config(app_config, request):
    return {**app_config, "RATELIMIT_STORAGE_URL": request.param, "TRUSTED_PROXIES": 1,
            "LOGIN_LIMIT_PER_ACCOUNT": f"{BUDGET} per 15 minutes",
            "LOGIN_LIMIT_PER_IP": "1000 per 15 minutes"}


def _post(url: str, *, form: dict | None = None, body: dict | None = None,
          client_ip: str) -> int:
    if form is not None:
        data = urllib.parse.urlencode(form).encode()
        kind = "application/x-www-form-urlencoded"
    else:
        data = json.dumps(body).encode()
        kind = "application/json"
    req = urllib.request.Request(url, data=data, method="POST", headers={
        "Content-Type": kind, "X-Forwarded-For": client_ip})
    try:
        with urllib.request.urlopen(req, timeout=120) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        if exc.code == 429:
            assert exc.headers.get("Retry-After"), "429 without Retry-After"
        return exc.code


def _burst(attempts) -> Counter:
    barrier = threading.Barrier(len(attempts))

    def run(attempt):
        barrier.wait()
        return attempt()

    with ThreadPoolExecutor(max_workers=len(attempts)) as pool:
        return Counter(pool.map(run, attempts))


def _client_ip() -> str:
    # A fresh address per run: Redis keeps counters between test runs.
    return f"2001:db8::{uuid.uuid4().hex[:4]}:{uuid.uuid4().hex[:4]}"


def test_forty_parallel_guesses_at_one_account_get_exactly_the_budget(app, db, live_server):  # noqa: F811
    email = f"{uuid.uuid4().hex[:12]}@example.com"
    make_user(app, email=email)
    db.session.commit()
    ip = _client_ip()
    web = live_server.url("/login")
    api = live_server.url("/api/v1/auth/tokens")
    attempts = []
    for i in range(BURST):  # half through the pages, half through the API: one budget
        if i % 2:
            attempts.append(lambda: _post(web, form={"email": email, "password": "wrong-guess"},
                                          client_ip=ip))
        else:
            attempts.append(lambda: _post(api, body={"email": email, "password": "wrong-guess"},
                                          client_ip=ip))
    codes = _burst(attempts)
    assert codes == Counter({401: BUDGET, 429: BURST - BUDGET})


def test_forty_parallel_guesses_from_one_address_get_exactly_its_budget(  # noqa: F811
    app, db, live_server_factory  # noqa: F811
):
    app.config["LOGIN_LIMIT_PER_IP"] = f"{BUDGET} per 15 minutes"
    app.config["LOGIN_LIMIT_PER_ACCOUNT"] = "1000 per 15 minutes"
    server = live_server_factory(app)
    ip = _client_ip()
    url = server.url("/login")
    attempts = [
        (lambda n=n: _post(url, form={"email": f"{uuid.uuid4().hex[:8]}-{n}@example.com",
                                      "password": "wrong-guess"}, client_ip=ip))
        for n in range(BURST)
    ]
    codes = _burst(attempts)
    assert codes == Counter({401: BUDGET, 429: BURST - BUDGET})
