"""`socialpost accounts` and `socialpost oauth-url`: what each credential in a user's
failover chain can reach, and where the user connects another platform (tasks.connect,
shared with the HTTP API). Keys are decrypted in memory only and never printed.
"""

from __future__ import annotations

import uuid

import click

from tasks.connect import PROVIDERS, SOURCES, Link
from worker.commands import render
from worker.commands.common import CONTEXT, BadInput, Command, cli_errors, db_connection, note


def chain_for(user_id: uuid.UUID) -> list[Link]:
    """The user's chain, or a one-line error when there is none."""
    from tasks.connect import NoCredentials, chain_for

    try:
        with db_connection() as conn:
            return chain_for(conn, user_id)
    except NoCredentials as exc:
        raise click.ClickException(str(exc)) from None


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
    from tasks.connect import list_accounts

    with cli_errors():
        links = chain_for(user_id)
    for link in links:
        if link.invalid_at is not None:
            note(f"note: {link.label} key is marked invalid {render.when(link.invalid_at)}: "
                 f"{link.invalid_reason or 'rejected'}; the worker skips it")
    found, errors = list_accounts(user_id, links)
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
    from tasks.connect import NoConnectUrl, connect_url

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
    try:
        url, link = connect_url(user_id, name, redirect_url, links)
    except NoConnectUrl as exc:
        raise click.ClickException(str(exc)) from None
    note(f"connect URL from {link.label}")
    click.echo(url)
