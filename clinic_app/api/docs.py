"""The OpenAPI 3.1 document, built from the registered endpoints, and a docs page."""

from __future__ import annotations

import re
from typing import Any

from flask import jsonify
from flask import render_template
from pydantic import BaseModel

from clinic_app.api import bp
from clinic_app.api.core import ENDPOINTS
from clinic_app.validation import MAX_ID

ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "fields": {"type": "object", "additionalProperties": {"type": "string"}},
            },
        }
    },
}

ERROR_TEXT = {
    400: "Malformed request",
    401: "Not authenticated",
    403: "Forbidden (for example a client sending staff-only options)",
    404: "Not found (or not yours)",
    409: "Conflict (for example the slot was just taken)",
    422: "Invalid input",
    429: "Too many requests",
}


def _schema(model: type[BaseModel], components: dict[str, Any], mode: str) -> dict[str, Any]:
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}", mode=mode)
    for name, sub in schema.pop("$defs", {}).items():
        components[name] = sub
    components[model.__name__] = schema
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def build_document() -> dict[str, Any]:
    components: dict[str, Any] = {"Error": ERROR_SCHEMA}
    paths: dict[str, Any] = {}
    for spec in ENDPOINTS:
        path = (bp.url_prefix or "") + re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", spec.rule)
        op: dict[str, Any] = {
            "summary": spec.summary,
            "tags": [spec.tag],
            "operationId": f"{spec.method.lower()}_{path.strip('/').replace('/', '_')}",
            "responses": {},
        }
        params = [
            {"name": name, "in": "path", "required": True,
             # The <int:...> converter matches ids 1..2^31-1 only (anything else is a 404).
             "schema": ({"type": "integer", "minimum": 1, "maximum": MAX_ID}
                        if f"int:{name}" in spec.rule else {"type": "string"})}
            for name in re.findall(r"<(?:\w+:)?(\w+)>", spec.rule)
        ]
        if spec.query is not None:
            schema = spec.query.model_json_schema()
            required = set(schema.get("required", []))
            for name, prop in schema.get("properties", {}).items():
                params.append({"name": name, "in": "query", "required": name in required,
                               "schema": prop})
        if params:
            op["parameters"] = params
        if spec.body is not None:
            op["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": _schema(spec.body, components,
                                                                   "validation")}},
            }
        ok: dict[str, Any] = {"description": "Success"}
        if spec.response is not None:
            ok["content"] = {"application/json": {"schema": _schema(spec.response, components,
                                                                    "serialization")}}
        op["responses"][str(spec.status)] = ok
        errors = set(spec.errors) | ({401} if spec.auth else set())
        if spec.body is not None or spec.query is not None:
            errors |= {400, 422}
        for code in sorted(errors):
            op["responses"][str(code)] = {
                "description": ERROR_TEXT.get(code, "Error"),
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
            }
        if spec.auth:
            op["security"] = [{"bearer": []}]
        paths.setdefault(path, {})[spec.method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": "Trigger Point Clinic API", "version": "1.0.0",
                 "description": "Book and manage trigger point therapy sessions. Errors are "
                                "`{\"error\": {\"code\", \"message\", \"fields\"}}`."},
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }


@bp.get("/openapi.json")
def openapi():  # type: ignore[no-untyped-def]
    return jsonify(build_document())


@bp.get("/docs")
def docs() -> str:
    return render_template("api_docs.html", document=build_document())
