"""Render an email from ``templates/email/<name>.txt`` (and ``.html`` if present).

The text template sets the subject with ``{% set subject = "..." %}``; both bodies get
the clinic (name, address, zone: the settings row, passed in by the caller) and
``base_url`` for absolute links. This module reads no database: the services layer
above decides what to say and hands over everything a template needs.
"""

from __future__ import annotations

from typing import Any

from flask import current_app
from flask import has_request_context
from jinja2 import TemplateNotFound

from clinic_app.mail.outbox import Attachment
from clinic_app.mail.outbox import Outgoing


def render_email(
    name: str,
    to: str,
    *,
    clinic: Any,
    attachments: list[Attachment] | None = None,
    headers: dict[str, str] | None = None,
    **context: Any,
) -> Outgoing:
    """Render in a request context, so ``url_for`` works in the worker too."""
    if has_request_context():
        return _render(name, to, clinic=clinic, attachments=attachments, headers=headers,
                       **context)
    with current_app.test_request_context("/", base_url=current_app.config["BASE_URL"]):
        return _render(name, to, clinic=clinic, attachments=attachments, headers=headers,
                       **context)


def _render(
    name: str,
    to: str,
    *,
    clinic: Any,
    attachments: list[Attachment] | None,
    headers: dict[str, str] | None,
    **context: Any,
) -> Outgoing:
    env = current_app.jinja_env
    context["clinic"] = clinic
    context.setdefault("base_url", current_app.config["BASE_URL"])
    text_template = env.get_template(f"email/{name}.txt")
    module = text_template.make_module(context)
    subject = str(getattr(module, "subject", "")).strip()
    if not subject:
        raise ValueError(f"email/{name}.txt sets no subject")
    text = str(module).strip() + "\n"
    try:
        html = env.get_template(f"email/{name}.html").render(subject=subject, **context)
    except TemplateNotFound:
        html = None
    return Outgoing(
        to=to,
        subject=subject,
        text=text,
        html=html,
        attachments=attachments or [],
        headers=headers or {},
    )
