"""The production entry point (``gunicorn wsgi:app``)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

_PROBE = """
import gc, sys
import wsgi
print(type(wsgi.app).__name__, gc.get_freeze_count())
"""


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLINIC_")}
    env.update({"CLINIC_ENV": "production", "CLINIC_SECRET_KEY": "k" * 40,
                "CLINIC_DATABASE_URL": f"sqlite:///{tmp_path}/wsgi.sqlite3",
                "CLINIC_INSTANCE_PATH": str(tmp_path / "instance"),
                "CLINIC_BASE_URL": "https://clinic.example", "PYTHONPATH": str(ROOT)})
    return env


def test_wsgi_builds_the_app_and_freezes_it_out_of_the_collector(tmp_path):
    # A full collection would otherwise walk every object of the app (~80 ms per worker).
    out = subprocess.run([sys.executable, "-c", _PROBE], cwd=tmp_path, env=_env(tmp_path),
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    name, frozen = out.stdout.split()
    assert name == "Flask"
    assert int(frozen) > 10_000


def test_wsgi_without_a_secret_key_in_production_fails_loudly(tmp_path):
    env = _env(tmp_path)
    del env["CLINIC_SECRET_KEY"]
    out = subprocess.run([sys.executable, "-c", _PROBE], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode != 0
    assert "SECRET_KEY" in out.stderr
