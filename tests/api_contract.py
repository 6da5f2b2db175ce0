"""Check an API response against the response model its endpoint documents.

The OpenAPI document is generated from ``@endpoint(..., response=Model)``; a response that
has a field the model lacks, lacks one it has, or a value of another type would make the
document lie. ``assert_documented(response, "POST", "/bookings/<int:booking_id>/complete")``
validates the JSON with the model and compares the model's own JSON with the response, so
extra keys and changed types both fail.
"""

from __future__ import annotations

from typing import Any

from clinic_app.api.core import ENDPOINTS
from clinic_app.api.core import EndpointSpec


def spec_for(method: str, rule: str) -> EndpointSpec:
    """The registered endpoint for ``method`` and ``rule`` (the rule as registered)."""
    rule = rule.removeprefix("/api/v1")
    for spec in ENDPOINTS:
        if spec.method == method and spec.rule == rule:
            return spec
    raise AssertionError(f"no endpoint {method} {rule}")


def assert_documented(response: Any, method: str, rule: str) -> dict[str, Any]:
    """Assert that ``response`` is the endpoint's documented status and response model."""
    spec = spec_for(method, rule)
    assert response.status_code == spec.status, (response.status_code, response.get_json())
    body = response.get_json()
    assert spec.response is not None, f"{method} {rule} documents no response model"
    model = spec.response.model_validate(body)
    assert model.model_dump(mode="json") == body, (
        f"{method} {rule}: the response differs from {spec.response.__name__}")
    return body
