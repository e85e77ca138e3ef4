"""`socialpost migrate` and `socialpost credentials ...`.

Heavy imports (psycopg, cryptography) happen inside the commands so that
`socialpost --help` stays fast. Our own errors become one line and exit 1.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import click


@contextmanager
def _one_line_errors() -> Iterator[None]:
    """Turn db errors (and driver errors) into a one-line ClickException."""
    from db.errors import DbError

    try:
        yield
    except DbError as exc:
        raise click.ClickException(str(exc)) from None
    except Exception as exc:  # psycopg errors: first line only, no traceback
        import psycopg

        if isinstance(exc, psycopg.Error):
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise click.ClickException(f"database error: {first}") from None
        raise


@click.command()
@click.option("--database-url", envvar="DATABASE_URL", default=None,
              help="Defaults to $DATABASE_URL.")
@click.option("--wait", "connect_wait", type=click.FloatRange(min=0), default=0,
              show_default=True, metavar="SECONDS",
              help="Wait this long for PostgreSQL to come up (0: fail at once).")
@click.option("--lock-wait", type=click.FloatRange(min=0), default=None, metavar="SECONDS",
              help="Wait this long for a concurrent migrate to finish (default 600).")
def migrate(database_url: str | None, connect_wait: float, lock_wait: float | None) -> None:
    """Create the database if needed and apply pending migrations."""
    with _one_line_errors():
        from db import migrations

        waits = {"connect_wait": connect_wait}
        if lock_wait is not None:
            waits["lock_wait"] = lock_wait
        done = migrations.apply(database_url, **waits)
    if done:
        for version in done:
            click.echo(f"applied {version}")
    else:
        click.echo("up to date")


@click.group()
def credentials() -> None:
    """Store, list, delete or re-encrypt per-user provider API keys."""


def _read_api_key() -> str:
    """From stdin when piped, else a hidden prompt: a key never appears in argv or history."""
    stdin = sys.stdin
    if stdin is not None and not stdin.isatty():
        key = stdin.readline().strip()
    else:
        key = click.prompt("API key", hide_input=True, confirmation_prompt=False).strip()
    if not key:
        raise click.ClickException("no API key given (pipe it on stdin or type it at the prompt)")
    return key


def _with_tx(fn: Callable[[Any], Any]) -> Any:
    from db.pool import close_pools, transaction

    try:
        with transaction() as conn:
            return fn(conn)
    finally:
        close_pools()


@credentials.command("set")
@click.argument("user_id")
@click.argument("provider", type=click.Choice(["postforme", "late"]))
@click.option("--platforms", default=None, help="Connected platforms, comma-separated.")
def set_credentials(user_id: str, provider: str, platforms: str | None) -> None:
    """Store (or replace) USER_ID's API key for PROVIDER, encrypted with ENCRYPTION_KEY."""
    with _one_line_errors():
        from db import credentials as repo
        from db.vault import Vault

        vault = Vault.from_env()  # fail on a bad key before asking for the API key
        names = [p.strip() for p in platforms.split(",") if p.strip()] if platforms else None
        api_key = _read_api_key()
        _with_tx(lambda conn: repo.save_credentials(conn, vault, user_id, provider, api_key, names))
    click.echo(f"saved {provider} credentials for {user_id}")


@credentials.command("list")
@click.option("--user", "user_id", default=None, help="Only this user.")
def list_cmd(user_id: str | None) -> None:
    """Show stored credentials (never the keys)."""
    with _one_line_errors():
        from db import credentials as repo

        rows = _with_tx(lambda conn: repo.list_credentials(conn, user_id))
    if not rows:
        click.echo("no credentials stored")
        return
    header = ("USER_ID", "PROVIDER", "PLATFORMS", "UPDATED", "STATE")
    table = [header]
    for r in rows:
        state = f"invalid: {r.invalid_reason or 'rejected'}" if r.invalid_at else "ok"
        updated = r.updated_at.strftime("%Y-%m-%d %H:%M") if r.updated_at else "-"
        table.append((str(r.user_id), r.provider, ",".join(r.connected_platforms or []) or "-",
                      updated, state))
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for row in table:
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


@credentials.command("delete")
@click.argument("user_id")
@click.argument("provider", type=click.Choice(["postforme", "late"]))
def delete_cmd(user_id: str, provider: str) -> None:
    """Delete USER_ID's key for PROVIDER."""
    with _one_line_errors():
        from db import credentials as repo

        deleted = _with_tx(lambda conn: repo.delete_credentials(conn, user_id, provider))
    if not deleted:
        raise click.ClickException(f"no {provider} credentials stored for {user_id}")
    click.echo(f"deleted {provider} credentials for {user_id}")


@credentials.command("rotate")
@click.option("--batch-size", default=500, show_default=True, type=click.IntRange(1, 100_000))
def rotate_cmd(batch_size: int) -> None:
    """Re-encrypt every stored key (and webhook signing secret) with the first key in
    ENCRYPTION_KEY.

    Put the new key first and keep the old one after it (comma-separated) until this
    finishes; each batch commits on its own, so it is safe to interrupt and rerun.
    """
    with _one_line_errors():
        from db import credentials as repo
        from db.pool import close_pools
        from db.vault import Vault

        vault = Vault.from_env()

        def progress(scanned: int, rotated: int) -> None:
            click.echo(f"scanned {scanned}, re-encrypted {rotated}")

        try:
            total = repo.rotate_all(None, vault, batch_size=batch_size, progress=progress)
        finally:
            close_pools()
        from db import webhooks
        from worker.commands.common import db_connection

        with db_connection() as conn:
            secrets = webhooks.rotate_secrets(conn, vault)
    click.echo(f"done: {total} key(s) re-encrypted with the first ENCRYPTION_KEY")
    click.echo(f"webhook signing secrets re-encrypted: {secrets}")
    if total == 0:
        click.echo("(every key was already on the first key)")
