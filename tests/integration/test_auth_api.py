"""API accounts: sign-up, bearer tokens, revocation, error shape, OpenAPI document."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from clinic_app.models import ApiToken
from tests.factories import PASSWORD
from tests.factories import make_user


def test_signup_answers_the_same_for_a_registered_email(client, app, mailbox):
    make_user(app, email="taken@example.com")
    body = {"name": "X", "email": "taken@example.com", "password": "a-good-long-password"}
    taken = client.post("/api/v1/auth/signup", json=body)
    fresh = client.post("/api/v1/auth/signup", json=body | {"email": "fresh@example.com"})
    assert taken.status_code == fresh.status_code == 201
    assert taken.json == fresh.json
    mailbox.deliver()
    assert mailbox.messages("fresh@example.com")[0]["Subject"] == "Confirm your email address"


def test_signup_validation_errors_have_the_error_shape(client):
    response = client.post("/api/v1/auth/signup", json={"name": "X", "email": "bad",
                                                         "password": "short"})
    assert response.status_code == 422
    error = response.json["error"]
    assert error["code"] == "validation_failed"
    assert set(error["fields"]) == {"email", "password"}
    missing = client.post("/api/v1/auth/signup", json={"email": "a@example.com"})
    assert missing.status_code == 422 and "name" in missing.json["error"]["fields"]
    not_json = client.post("/api/v1/auth/signup", data="name=x",
                           content_type="application/x-www-form-urlencoded")
    assert not_json.status_code == 400 and not_json.json["error"]["code"] == "invalid_json"
    array = client.post("/api/v1/auth/signup", json=[1, 2])
    assert array.status_code == 400
    wrong_type = client.post("/api/v1/auth/signup", json={"name": 5, "email": [],
                                                          "password": None})
    assert wrong_type.status_code == 422


def test_token_lifecycle(client, app, db):
    make_user(app, email="api@example.com")
    created = client.post("/api/v1/auth/tokens", json={"email": "api@example.com",
                                                       "password": PASSWORD})
    assert created.status_code == 201
    token = created.json["token"]
    assert created.json["expires_at"].endswith("Z") or "+00:00" in created.json["expires_at"]
    stored = db.session.scalars(select(ApiToken.token_hash)).all()
    assert token not in stored and len(stored) == 1
    auth = {"Authorization": f"Bearer {token}"}
    assert client.delete("/api/v1/auth/tokens/current", headers=auth).status_code == 204
    again = client.delete("/api/v1/auth/tokens/current", headers=auth)
    assert again.status_code == 401 and again.json["error"]["code"] == "invalid_token"


def test_bad_credentials_and_unverified_accounts_get_401(client, app):
    make_user(app, email="api@example.com")
    make_user(app, email="new@example.com", verified=False)
    wrong = client.post("/api/v1/auth/tokens", json={"email": "api@example.com",
                                                     "password": "wrong-password"})
    unknown = client.post("/api/v1/auth/tokens", json={"email": "who@example.com",
                                                       "password": "wrong-password"})
    unverified = client.post("/api/v1/auth/tokens", json={"email": "new@example.com",
                                                          "password": PASSWORD})
    assert wrong.status_code == unknown.status_code == unverified.status_code == 401
    assert wrong.json == unknown.json
    assert unverified.json["error"]["code"] == "email_not_verified"


def test_missing_or_expired_token_gives_401(client, app, clock):
    make_user(app, email="api@example.com")
    assert client.delete("/api/v1/auth/tokens/current").status_code == 401
    token = client.post("/api/v1/auth/tokens", json={"email": "api@example.com",
                                                     "password": PASSWORD}).json["token"]
    clock.advance(timedelta(days=31))
    response = client.delete("/api/v1/auth/tokens/current",
                             headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401


def test_token_requests_are_throttled(client, app):
    app.config["LOGIN_LIMIT_PER_ACCOUNT"] = "2 per 15 minutes"
    make_user(app, email="api@example.com")
    codes = [client.post("/api/v1/auth/tokens", json={"email": "api@example.com",
                                                      "password": "wrong-password"}).status_code
             for _ in range(3)]
    assert codes == [401, 401, 429]
    limited = client.post("/api/v1/auth/tokens", json={"email": "api@example.com",
                                                       "password": PASSWORD})
    assert limited.status_code == 429 and limited.json["error"]["code"] == "rate_limited"


def test_openapi_document_and_docs_page(client):
    document = client.get("/api/v1/openapi.json").json
    assert document["openapi"].startswith("3.1")
    assert "/api/v1/auth/tokens" in document["paths"]
    post = document["paths"]["/api/v1/auth/tokens"]["post"]
    assert "401" in post["responses"] and "requestBody" in post
    page = client.get("/api/v1/docs")
    assert page.status_code == 200 and b"/api/v1/auth/tokens" in page.data


def test_wrong_method_gives_json_405(client):
    response = client.get("/api/v1/auth/tokens")
    assert response.status_code == 405 and response.json["error"]["code"] == "method_not_allowed"
