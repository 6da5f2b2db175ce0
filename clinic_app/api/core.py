"""The one way to declare an API endpoint: ``@endpoint(...)``.

It parses and validates the JSON body and query string with pydantic (errors
become 422 with per-field messages), authenticates the bearer token, and records
the endpoint for the OpenAPI document.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field
from functools import wraps
from typing import Annotated
from typing import Any

from flask import Response
from flask import g
from flask import jsonify
from flask import request
from pydantic import AfterValidator
from pydantic import BaseModel
from pydantic import Field
from pydantic import ValidationError

from clinic_app.api import bp
from clinic_app.clock import utcnow as now
from clinic_app.errors import BadRequest
from clinic_app.errors import DomainError
from clinic_app.errors import NotAuthenticated
from clinic_app.errors import NotFound
from clinic_app.errors import ValidationFailed
from clinic_app.extensions import db
from clinic_app.models.accounts import User
from clinic_app.services.accounts import user_for_api_token
from clinic_app.validation import MAX_ID
from clinic_app.validation import single_line

# Field types shared by the request models of every API module.
# Ids are 32-bit in the database: a bigger number is a 422, not a driver overflow (a 500).
Id = Annotated[int, Field(ge=1, le=MAX_ID)]
# Names, phone numbers, reasons: one line, no control characters (the pages' rule too).
SingleLineText = Annotated[str, AfterValidator(single_line)]
# An email address; the document says so (``format: email``), the services check it.
Email = Annotated[str, Field(min_length=3, max_length=254, json_schema_extra={"format": "email"})]


@dataclass
class EndpointSpec:
    rule: str
    method: str
    summary: str
    tag: str
    body: type[BaseModel] | None
    query: type[BaseModel] | None
    response: type[BaseModel] | None
    status: int
    auth: bool
    roles: tuple[str, ...]
    errors: tuple[int, ...] = field(default_factory=tuple)


ENDPOINTS: list[EndpointSpec] = []


def _fields(exc: ValidationError) -> dict[str, str]:
    out: dict[str, str] = {}
    for err in exc.errors():
        name = ".".join(str(p) for p in err["loc"]) or "body"
        out.setdefault(name, err["msg"])
    return out


def current_api_user() -> User:
    return g.api_user


def _authenticate() -> None:
    header = request.headers.get("Authorization", "")
    scheme, _, raw = header.partition(" ")
    if scheme.lower() != "bearer" or not raw.strip():
        raise NotAuthenticated("Send 'Authorization: Bearer <token>' (POST /api/v1/auth/tokens).")
    found = user_for_api_token(db.session, raw.strip(), now())
    if found is None:
        raise NotAuthenticated("The token is not valid, expired or revoked.",
                               code="invalid_token")
    g.api_user, g.api_token = found


def endpoint(
    rule: str,
    method: str,
    *,
    summary: str,
    tag: str,
    body: type[BaseModel] | None = None,
    query: type[BaseModel] | None = None,
    response: type[BaseModel] | None = None,
    status: int = 200,
    auth: bool = True,
    roles: tuple[str, ...] = (),
    errors: tuple[int, ...] = (),
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register an API view. The view gets ``body=``/``query=`` models and returns
    a dict (or a pydantic model) that is sent with ``status``; a hot path may return a
    ready ``Response`` (its JSON already encoded), which is sent as it is."""

    def decorator(view: Callable[..., Any]) -> Callable[..., Any]:
        ENDPOINTS.append(EndpointSpec(rule, method, summary, tag, body, query, response, status,
                                      auth, roles, errors))

        @wraps(view)
        def wrapped(**kwargs: Any) -> Any:
            if auth:
                _authenticate()
                if roles and g.api_user.role not in roles:
                    raise NotFound("Not found.")
            if body is not None:
                payload = request.get_json(silent=True)
                if payload is None:
                    raise BadRequest("Send a JSON object with Content-Type: application/json.",
                                     code="invalid_json")
                if not isinstance(payload, dict):
                    raise BadRequest("The body must be a JSON object.", code="invalid_json")
                try:
                    kwargs["body"] = body.model_validate(payload)
                except ValidationError as exc:
                    fields = _fields(exc)
                    raise ValidationFailed(
                        "Some fields are missing or invalid.", fields=fields
                    ) from None
            if query is not None:
                try:
                    kwargs["query"] = query.model_validate(request.args.to_dict())
                except ValidationError as exc:
                    raise ValidationFailed(
                        "Some query parameters are missing or invalid.", fields=_fields(exc)
                    ) from None
            try:
                result = view(**kwargs)
            except DomainError:
                db.session.rollback()
                raise
            if isinstance(result, tuple):
                result, code = result
            else:
                code = status
            if isinstance(result, Response):
                result.status_code = code
                return result
            if isinstance(result, BaseModel):
                result = result.model_dump(mode="json")
            if code == 204:
                return "", 204
            return jsonify(result), code

        bp.add_url_rule(rule, endpoint=view.__name__, view_func=wrapped, methods=[method])
        return wrapped

    return decorator
