"""`socialpost tokens create|list|revoke`: the HTTP API's bearer tokens. A new token is
printed once, alone on stdout (so `TOKEN=$(socialpost tokens create ...)` works); only its
digest is stored, so a lost token is revoked and replaced, never shown again."""

from __future__ import annotations

import click

from worker.commands.common import (
    CONTEXT,
    BadInput,
    Group,
    cli_errors,
    db_connection,
    note,
    split_list,
)
from worker.commands.render import echo_json, table, when


@click.group("tokens", cls=Group, context_settings=CONTEXT)
def tokens() -> None:
    """Create, list or revoke the HTTP API's bearer tokens.

    \b
    A scoped token (--user, repeatable) reads and writes only those users' posts,
    credentials and accounts; an admin token (--admin) acts for every user and
    manages tokens and webhooks.
    """


@tokens.command("create")
@click.option("--name", required=True, metavar="NAME",
              help="What the token is for (shown in `tokens list`).")
@click.option("--user", "users", multiple=True, metavar="USER_ID[,USER_ID]",
              help="A user the token acts for (repeatable, or a comma list).")
@click.option("--admin", is_flag=True, help="Act for every user; manage tokens and webhooks.")
def create(name: str, users: tuple[str, ...], admin: bool) -> None:
    """Create a token and print it once, alone on stdout. Store it now: it is kept only
    as a digest and cannot be shown again."""
    from db import tokens as repo
    from db.errors import InvalidInput

    with cli_errors(), db_connection() as conn:
        try:
            record, token = repo.create_token(conn, name, split_list(users), admin=admin)
        except InvalidInput as exc:  # named as the option the operator gave
            raise BadInput(f"--{exc.field}: {exc.rule}") from None
    scope = "admin" if record.admin else f"{len(record.user_ids)} user(s)"
    note(f"created token {record.id} ({record.prefix}…, {scope}); it is shown only now")
    click.echo(token)


@tokens.command("list")
@click.option("--all", "include_revoked", is_flag=True, help="Include revoked tokens.")
@click.option("--json", "as_json", is_flag=True, help="JSON on stdout.")
def list_cmd(include_revoked: bool, as_json: bool) -> None:
    """The tokens (never the tokens themselves: their id, name, prefix and scope)."""
    from db import tokens as repo

    with cli_errors(), db_connection() as conn:
        rows = repo.list_tokens(conn, include_revoked)
    if as_json:
        echo_json([{"id": t.id, "name": t.name, "prefix": t.prefix, "admin": t.admin,
                    "user_ids": list(t.user_ids), "created_at": t.created_at,
                    "last_used_at": t.last_used_at, "revoked_at": t.revoked_at}
                   for t in rows])
        return
    if not rows:
        note("no tokens (create one with `socialpost tokens create --name N --user U`)")
        return
    click.echo(table(
        ("id", "name", "prefix", "scope", "created", "last used", "revoked"),
        [(t.id, t.name, t.prefix + "…",
          "admin" if t.admin else ",".join(str(u) for u in t.user_ids),
          when(t.created_at), when(t.last_used_at), when(t.revoked_at)) for t in rows],
        limits={"scope": 80, "name": 30}))


@tokens.command("revoke")
@click.argument("token_id", metavar="ID|PREFIX")
def revoke(token_id: str) -> None:
    """Revoke a token by its id or the prefix `tokens list` shows; it is refused from
    the next request on."""
    from db import tokens as repo

    with cli_errors(), db_connection() as conn:
        record = repo.revoke_token(conn, token_id)
    if record is None:
        raise click.ClickException(f"no live token {token_id} (see `socialpost tokens list`)")
    click.echo(f"revoked {record.id} ({record.name})")
