"""`/v1/users/{user_id}/...`: a user's provider keys (stored encrypted, never echoed nor
logged), the accounts each credential of their chain reaches, and where they connect
another platform. All through tasks.connect and db.credentials, as the CLI."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Response

from api.auth import Principal, may_read, may_write
from api.models import Accounts, Credential, CredentialIn, OAuthIn, OAuthUrl, Provider
from api.problems import AUTHED, Problem, invalid, not_found, responses
from db import credentials
from db.pool import connection
from db.vault import Vault
from tasks.connect import Link, NoConnectUrl, NoCredentials, chain_for, connect_url, list_accounts

router = APIRouter(tags=["users"])


@router.put("/users/{user_id}/credentials/{provider}", response_model=Credential,
            summary="Store (or replace) the user's key for a provider",
            responses=responses(*AUTHED, 403, 413))
def put_credentials(user_id: uuid.UUID, provider: Provider, body: CredentialIn,
                    token: Principal) -> Credential:
    """The key is encrypted with ENCRYPTION_KEY before it is stored; the answer never
    contains it. A new key clears an earlier "invalid" mark."""
    may_write(token, user_id)
    vault = Vault.from_env()
    with connection() as conn:
        credentials.save_credentials(conn, vault, user_id, provider, body.api_key,
                                     body.connected_platforms)
        info = next(i for i in credentials.list_credentials(conn, user_id)
                    if i.provider == provider)
    return Credential(**{k: getattr(info, k) for k in Credential.model_fields})


@router.delete("/users/{user_id}/credentials/{provider}", status_code=204,
               summary="Delete the user's key for a provider",
               responses=responses(*AUTHED, 403, 404, 413))
def delete_credentials(user_id: uuid.UUID, provider: Provider, token: Principal) -> Response:
    may_write(token, user_id)
    with connection() as conn:
        deleted = credentials.delete_credentials(conn, user_id, provider)
    if not deleted:
        raise not_found(f"{provider} credentials for user {user_id}")
    return Response(status_code=204)


def _chain(user_id: uuid.UUID) -> list[Link]:
    try:
        with connection() as conn:
            return chain_for(conn, user_id)
    except NoCredentials as exc:
        raise Problem(404, "no-credentials", str(exc), title="No credentials") from None


@router.get("/users/{user_id}/accounts", response_model=Accounts,
            summary="The social accounts the user may post to, per credential",
            responses=responses(*AUTHED, 404))
def get_accounts(user_id: uuid.UUID, token: Principal) -> Accounts:
    """Asked afresh from each provider of the user's chain; a credential that could not
    be listed is an entry in `errors` (the others are still listed)."""
    may_read(token, user_id, f"user {user_id}")
    found, errors = list_accounts(user_id, _chain(user_id))
    return Accounts(user_id=user_id, accounts=found, errors=errors)  # type: ignore[arg-type]


@router.post("/users/{user_id}/oauth-url", response_model=OAuthUrl,
             summary="Where the user connects a platform",
             responses=responses(*AUTHED, 403, 404, 413, 502))
def post_oauth_url(user_id: uuid.UUID, body: OAuthIn, token: Principal) -> OAuthUrl:
    """The first connect URL a provider of the user's chain gives (or only `provider` /
    `source`); accounts connected through it are tied to the user."""
    from providers.platforms import normalize_platform

    may_write(token, user_id)
    name = normalize_platform(body.platform)
    problems = [] if name else [f"platform: unknown platform {body.platform!r}"]
    if not body.redirect_url.startswith(("https://", "http://")) or len(body.redirect_url) > 2000:
        problems.append("redirect_url: must be an http(s) URL of at most 2000 characters")
    if problems or name is None:
        raise invalid(problems)
    links = [link for link in _chain(user_id)
             if body.provider in (None, link.provider) and body.source in (None, link.source)]
    if not links:
        raise Problem(404, "no-credentials", f"user {user_id} has no credential matching "
                      f"provider={body.provider or 'any'} source={body.source or 'any'}")
    try:
        url, link = connect_url(user_id, name, body.redirect_url, links)
    except NoConnectUrl as exc:
        raise Problem(502, "no-connect-url", str(exc), title="Bad gateway") from None
    return OAuthUrl(url=url, provider=link.provider, source=link.source)  # type: ignore[arg-type]
