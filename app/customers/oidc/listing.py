"""`GET /v2/login-providers`: a storefront's sign-in buttons, one per provider of its store."""

import uuid
from typing import Any, Literal

from fastapi import APIRouter, Request

from app.customers.oidc.documents import LIST_DESCRIPTION
from app.customers.oidc.providers import LoginProvider, page_of_providers
from app.customers.oidc.router import LOGIN_PATH, TAG
from app.http.errors import error_responses
from app.http.jsonapi import ListDocument, Output, answers, list_document, list_parameters, page_of
from app.http.security import ReadCaller
from app.runtime.db import SessionDep
from app.runtime.settings import Settings

router = APIRouter(
    prefix="/v2/login-providers", tags=[TAG], responses=error_responses(400, 401, 403)
)


class ProviderLinks(Output):
    authorization_endpoint: str


class LoginProviderOut(Output):
    """A login provider, as a storefront offers it (`provider_json`)."""

    type: Literal["login_provider"]
    id: uuid.UUID
    name: str
    display_name: str
    links: ProviderLinks


def provider_json(provider: LoginProvider, *, issuer: str) -> dict[str, Any]:
    return {
        "type": "login_provider",
        "id": str(provider.id),
        "name": provider.name,
        "display_name": provider.display_name,
        "links": {"authorization_endpoint": f"{issuer}{LOGIN_PATH}/{provider.name}"},
    }


@router.get(
    "",
    summary="The store's login providers, for sign-in buttons (read)",
    description=LIST_DESCRIPTION,
    responses=answers(ListDocument[LoginProviderOut]),
    openapi_extra=list_parameters(),
)
async def list_login_providers(request: Request, session: SessionDep, caller: ReadCaller) -> Any:
    page = page_of(request)
    providers, total = await page_of_providers(session, store_id=caller.store_id, page=page)
    settings: Settings = request.app.state.settings
    data = [provider_json(provider, issuer=settings.issuer) for provider in providers]
    return list_document(request, data, page=page, total=total)
