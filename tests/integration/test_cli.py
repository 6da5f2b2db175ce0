"""The `clinic` command: seed-demo, create-admin, and `clinic up` as a real process."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from sqlalchemy import func
from sqlalchemy import select

from clinic_app.models import Service
from clinic_app.models import Therapist
from clinic_app.models import User
from clinic_app.services.demo import OTHER_CLIENTS


def test_seed_demo_is_idempotent(runner, db):
    first = runner.invoke(args=["seed-demo"])
    assert first.exit_code == 0 and "Demo data added" in first.output
    counts = (db.session.scalar(select(func.count()).select_from(User)),
              db.session.scalar(select(func.count()).select_from(Therapist)),
              db.session.scalar(select(func.count()).select_from(Service)))
    # The five logins plus the clients whose bookings fill the coming week.
    assert counts == (5 + len(OTHER_CLIENTS), 3, 4)
    second = runner.invoke(args=["seed-demo"])
    assert second.exit_code == 0 and "already present" in second.output
    db.session.expire_all()
    assert db.session.scalar(select(func.count()).select_from(User)) == 5 + len(OTHER_CLIENTS)


def test_create_admin(runner, db):
    result = runner.invoke(args=["create-admin", "--email", "Boss@Example.com",
                                 "--password", "a-very-long-password"])
    assert result.exit_code == 0, result.output
    user = db.session.scalar(select(User).where(User.email == "boss@example.com"))
    assert user.role == "admin" and user.email_verified_at is not None


def test_create_admin_rejects_weak_password_and_bad_email(runner, db):
    weak = runner.invoke(args=["create-admin", "--email", "a@example.com", "--password", "short"])
    assert weak.exit_code != 0 and "at least 10 characters" in weak.output
    bad = runner.invoke(args=["create-admin", "--email", "nope", "--password",
                              "a-very-long-password"])
    assert bad.exit_code != 0 and "valid email" in bad.output
    assert db.session.scalar(select(func.count()).select_from(User)) == 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_until_up(proc: subprocess.Popen[str], port: int) -> None:
    """Wait (at most 60 s) until ``clinic up`` on ``port`` answers /healthz with 200."""
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                assert r.status == 200
                return
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                raise AssertionError("clinic up did not start") from None
            time.sleep(0.3)


def _clean_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLINIC_")}
    env["CLINIC_INSTANCE_PATH"] = str(tmp_path / "instance")
    return env


def test_bad_configuration_stops_the_command_with_one_line(tmp_path):
    env = _clean_env(tmp_path) | {"CLINIC_TIMEZONE": "Nowhere/Special"}
    result = subprocess.run([sys.executable, "-m", "clinic_app", "seed-demo"], env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith(
        "Configuration error: CLINIC_TIMEZONE")


def test_clinic_up_serves_seeds_sends_mail_and_stops_on_ctrl_c(tmp_path):
    port = _free_port()
    env = _clean_env(tmp_path) | {"CLINIC_WORKER_DISPATCH_SECONDS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "clinic_app", "up", "--port", str(port)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(proc, port)
        with urllib.request.urlopen(base + "/", timeout=5) as response:
            home = response.read().decode()
        assert "Trigger point therapy - 60 min" in home
        assert response.headers["Server"] == "clinic"  # waitress, not the debug server
        # Sign up through the JSON API; the embedded worker delivers to the dev mailbox.
        request = urllib.request.Request(
            f"{base}/api/v1/auth/signup", method="POST",
            data=b'{"name": "Neo", "email": "neo@example.com", "password": "a-long-password"}',
            headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 201
        mailbox = tmp_path / "instance" / "dev-mailbox"

        def delivered_to(address: str) -> list[str]:
            mails = [p.read_text() for p in mailbox.glob("*.eml")]
            return [m for m in mails if f"To: {address}" in m]

        deadline = time.monotonic() + 20
        # The seeded demo's waiting check-in email, and the new sign-up's verification.
        while not (delivered_to("neo@example.com") and delivered_to("client@clinic.example")):
            assert time.monotonic() < deadline, "no email within 20 s"
            time.sleep(0.3)
        assert any("/check-in/" in m for m in delivered_to("client@clinic.example"))
    finally:
        proc.send_signal(signal.SIGINT)
        output, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, output
    assert f"Clinic running at {base}" in output
    assert "admin@clinic.example" in output and "demo-clinic-2026" in output
    assert "Stopped." in output


def test_clinic_up_stops_cleanly_on_sigterm(tmp_path):
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "clinic_app", "up", "--port", str(port)],
                            env=_clean_env(tmp_path), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        _wait_until_up(proc, port)
    finally:
        stopping = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, output
    assert time.monotonic() - stopping < 10
    assert "Stopped." in output and "Traceback" not in output


def test_clinic_up_stops_on_sigint_even_when_started_with_sigint_ignored(tmp_path):
    """A shell script's background job (``clinic up &``) starts with SIGINT ignored; the
    command still stops on SIGINT instead of running on."""
    port = _free_port()
    env = _clean_env(tmp_path) | {"CLINIC_WORKER_DISPATCH_SECONDS": "1"}

    def ignore_sigint() -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)

    proc = subprocess.Popen([sys.executable, "-m", "clinic_app", "up", "--port", str(port)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            preexec_fn=ignore_sigint)  # noqa: PLW1509 (test only, no threads)
    try:
        _wait_until_up(proc, port)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            output, _ = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            output, _ = proc.communicate()
            raise AssertionError("clinic up ignored SIGINT:\n" + output) from None
    assert proc.returncode == 0, output
    assert "Stopped." in output
