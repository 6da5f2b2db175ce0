"""WSGI entry point: ``gunicorn wsgi:app`` (configuration from CLINIC_* variables)."""

import gc

from clinic_app import create_app

app = create_app()

# Everything built so far (modules, the app, its routes and templates) lives as long as the
# worker: freezing it keeps the collector from walking it again. A full collection of a
# worker otherwise walks ~160,000 such objects, about 80 ms in which the worker answers
# nobody (measured on this machine kind); frozen it is under a millisecond.
gc.freeze()
