"""WSGI entry point: ``gunicorn wsgi:app`` (configuration from CLINIC_* variables)."""

from clinic_app import create_app

app = create_app()
