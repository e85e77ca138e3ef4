"""`socialpost accounts` and `socialpost oauth-url`: what each credential in a user's
failover chain can reach, and where the user connects another platform.

The chain is the worker's: user PostForMe, user LATE, global PostForMe, global LATE
(POSTFORME_API_KEY / LATE_API_KEY). Keys are decrypted in memory only and never printed.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import click

from worker.commands import render
from worker.commands.common import CONTEXT, BadInput, Command, cli_errors, db_connection, note

PROVIDERS = ("postforme", "late")
SOURCES = ("user", "global")


@dataclass(frozen=True)
class Link:
    """One present step of the chain: whose key, at which provider (key never shown)."""

    source: str
    provider: str
    api_key: str = field(repr=False)
    flagged: str | None = None  # why the worker skips a user key marked invalid

    @property
    def label(self) -> str:
        from tasks.chain import DISPLAY

        return f"{DISPLAY[self.provider]} ({self.source})"

    def client(self) -> Any:
        from providers.late import LateProvider
        from providers.postforme import PostForMeProvider

        cls = PostForMeProvider if self.provider == "postforme" else LateProvider
        return cls(self.api_key)


def chain_for(user_id: uuid.UUID) -> list[Link]:
    """The user's stored keys (decrypted) and the global ones, in failover order."""
    from db import credentials
    from db.vault import Vault
    from tasks.chain import CHAIN, global_keys

    stored: dict[str, Any] = {}
    with db_connection() as conn:
        infos = credentials.list_credentials(conn, user_id)
        if infos:
            vault = Vault.from_env()
            for info in infos:
                stored[info.provider] = credentials.get_credentials(
                    conn, vault, user_id, info.provider
                )
    globals_ = global_keys()
    links = []
    for source, provider in CHAIN:
        if source == "user" and stored.get(provider) is not None:
            cred = stored[provider]
            flagged = None
            if cred.invalid_at is not None:
                flagged = f"marked invalid {render.when(cred.invalid_at)}: " + (
                    cred.invalid_reason or "rejected"
                )
            links.append(Link(source, provider, cred.api_key, flagged))
        elif source == "global" and globals_.get(provider):
            links.append(Link(source, provider, globals_[provider]))
    if not links:
        raise click.ClickException(
            f"user {user_id} has no stored credentials and neither POSTFORME_API_KEY nor "
            "LATE_API_KEY is set"
        )
    return links


@click.command("accounts", cls=Command, context_settings=CONTEXT)
@click.option("--user", "user_id", required=True, type=click.UUID, help="Whose credentials.")
@click.option("--json", "as_json", is_flag=True,
              help="Print {user_id, accounts: [...], errors: [...]} as JSON.")
def accounts(user_id: uuid.UUID, as_json: bool) -> None:
    """The social accounts the user may post to, per credential of the failover chain.

    On the user's own keys every account is theirs; on a global key only those tied to
    the user (PostForMe external_id, the LATE profile named by the user id) and the
    organisation's untagged ones (`shared`, unless SOCIALPOST_SHARED_ACCOUNTS=0) are
    shown, never another user's. Asks each provider afresh (no cache). A credential
    that cannot be listed is reported on its own line and the exit code is 1.
    """
    from providers.errors import ProviderCallError

    with cli_errors():
        links = chain_for(user_id)
    found: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    for link in links:
        if link.flagged:
            note(f"note: {link.label} key is {link.flagged}; the worker skips it")
        client = link.client()
        client.invalidate_accounts()
        try:
            listed = client.usable_accounts(str(user_id), link.source)
        except ProviderCallError as exc:
            errors.append({"provider": link.provider, "source": link.source,
                           "kind": exc.outcome.kind.value, "error": str(exc)})
            continue
        for a, rank in sorted(listed, key=lambda x: (x[0].platform, x[0].username)):
            found.append({"platform": a.platform, "username": a.username, "id": a.id,
                          "profile_id": a.profile_id, "provider": link.provider,
                          "source": link.source, "owner": "user" if rank == "own" else rank})
    if as_json:
        render.echo_json({"user_id": user_id, "accounts": found, "errors": errors})
    elif found:
        click.echo(render.table(
            ("platform", "username", "id", "provider", "source", "owner"),
            [(a["platform"], a["username"], a["id"], a["provider"], a["source"], a["owner"])
             for a in found],
        ))
    else:
        click.echo("no connected accounts")
    for e in errors:
        note(f"warning: {e['provider']} ({e['source']}): {e['kind']}: {e['error']}")
    if errors:
        which = ", ".join(f"{e['provider']} ({e['source']})" for e in errors)
        raise click.ClickException(f"could not list accounts for {which}")


class _Warnings(logging.Handler):
    """Collects the providers' warnings, which say why a seed call returned None."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@contextmanager
def _provider_warnings() -> Iterator[_Warnings]:
    logger = logging.getLogger("providers")
    handler = _Warnings()
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)


@click.command("oauth-url", cls=Command, context_settings=CONTEXT)
@click.option("--user", "user_id", required=True, type=click.UUID, help="Whose credentials.")
@click.option("-p", "--platform", required=True, help="The platform to connect (twitter, ...).")
@click.option("--redirect", "redirect_url", required=True, metavar="URL",
              help="Where the provider sends the user back after connecting.")
@click.option("--provider", type=click.Choice(PROVIDERS),
              help="Only this provider (default: the first in the chain that answers).")
@click.option("--source", type=click.Choice(SOURCES),
              help="Only the user's own keys, or only the global ones.")
def oauth_url(
    user_id: uuid.UUID,
    platform: str,
    redirect_url: str,
    provider: str | None,
    source: str | None,
) -> None:
    """Print the URL where the user connects PLATFORM to a provider.

    Tries the user's failover chain in order (user PostForMe, user LATE, global
    PostForMe, global LATE) and prints the first URL a provider gives.
    """
    from providers.platforms import normalize_platform

    name = normalize_platform(platform)
    if name is None:
        raise BadInput(f"--platform: unknown platform {platform!r}")
    if not redirect_url.startswith(("https://", "http://")):
        raise BadInput(f"--redirect: must be an http(s) URL, got {redirect_url!r}")
    with cli_errors():
        links = [
            link for link in chain_for(user_id)
            if provider in (None, link.provider) and source in (None, link.source)
        ]
    if not links:
        raise click.ClickException(f"user {user_id} has no credential matching "
                                   f"provider={provider or 'any'} source={source or 'any'}")
    failures = []
    for link in links:
        client = link.client()
        with _provider_warnings() as caught:
            url = client.get_oauth_url(name, redirect_url, user_id=str(user_id),
                                       shared_key=link.source == "global")
        if url:
            note(f"connect URL from {link.label}")
            click.echo(url)
            return
        why = caught.messages[-1] if caught.messages else "no URL in the answer"
        failures.append(f"{link.label}: {why.removeprefix(client.name + ': ')}")
    raise click.ClickException(f"no connect URL for {name}: " + "; ".join(failures))
