"""API v1: clients at the desk: search (admin: all; therapist: their own) and create (admin)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from pydantic import Field

from clinic_app.api.core import current_api_user
from clinic_app.api.core import endpoint
from clinic_app.clock import utcnow
from clinic_app.extensions import db
from clinic_app.models.accounts import User
from clinic_app.services import clients as clients_svc


class ClientsQuery(BaseModel):
    q: str = Field(default="", max_length=120, description="Part of a name, email or phone")


class ClientIn(BaseModel):
    name: str = Field(max_length=120)
    email: str | None = Field(default=None, max_length=254)
    phone: str | None = Field(default=None, max_length=40)
    invite: bool = Field(default=False, description="Email a link to set a password")


class ClientOut(BaseModel):
    id: int
    name: str
    email: str | None
    phone: str | None


class ClientsOut(BaseModel):
    clients: list[ClientOut]


def client_json(user: User) -> dict[str, Any]:
    return {"id": user.id, "name": user.name, "email": user.email, "phone": user.phone}


@endpoint("/clients", "GET", summary="Search clients (admin: all; therapist: your own)",
          tag="clients", query=ClientsQuery, response=ClientsOut, roles=("therapist", "admin"),
          errors=(404,))
def clients_search(query: ClientsQuery) -> dict[str, Any]:
    """Name, email or phone containing ``q``; at most 50, by name."""
    found = clients_svc.search_clients(db.session, current_api_user(), query.q)
    return {"clients": [client_json(u) for u in found]}


@endpoint("/clients", "POST", summary="Admin: create a client (email and/or phone)",
          tag="clients", body=ClientIn, response=ClientOut, status=201, roles=("admin",),
          errors=(404, 409))
def clients_create(body: ClientIn) -> dict[str, Any]:
    """Consent is recorded as given at the desk. 409 ``email_taken`` for a known email; 422
    without an email and a phone."""
    client = clients_svc.create_client(db.session, actor=current_api_user(), name=body.name,
                                       email=body.email, phone=body.phone, now=utcnow(),
                                       invite=body.invite)
    out = client_json(client)
    db.session.commit()
    return out
