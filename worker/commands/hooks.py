"""`socialpost hooks register|list`: where PostForMe and LATE send us their webhooks.

Registering uses the global keys (POSTFORME_API_KEY, LATE_API_KEY): the webhooks report
every post made with them. PostForMe makes the secret and answers it; for LATE we give
LATE_WEBHOOK_SECRET, or make one. Both secrets are stored encrypted (ENCRYPTION_KEY), and
the API accepts them at once; `--show-secrets` also prints them as settings lines, for
those who configure the API through its environment.
"""

from __future__ import annotations

import secrets as random_secrets
from typing import Any

import click

from worker.commands.common import CONTEXT, Group, cli_errors, db_connection, note
from worker.commands.render import echo_json, table, when

PATHS = {"postforme": "/hooks/postforme", "late": "/hooks/late"}
SETTING = {"postforme": "POSTFORME_WEBHOOK_SECRET", "late": "LATE_WEBHOOK_SECRET"}


@click.group("hooks", cls=Group, context_settings=CONTEXT)
def hooks() -> None:
    """Register our webhook endpoints with PostForMe and LATE, or list them.

    \b
    The providers then tell the API (`socialpost api`) each platform's outcome as it
    happens; beat's confirmation sweep stays the net for anything a webhook misses.
    """


def _register(provider: str, key: str, url: str, earlier_secret: str | None
              ) -> tuple[str | None, str]:
    """(the provider's webhook id, the secret) for `url`, registered with `key`, for the
    events tasks.provider_hooks reads an outcome from. LATE takes our secret: the one set,
    else the one stored before (the earlier registration, which LATE cannot remove, stays
    verifiable), else a new one."""
    import settings
    from providers.late import LateProvider
    from providers.postforme import PostForMeProvider
    from tasks import provider_hooks

    if provider == "postforme":
        made = PostForMeProvider(key).register_webhook(url, [provider_hooks.POSTFORME_RESULT])
        return made["id"], made["secret"]
    secret = settings.current().late_webhook_secret or earlier_secret or \
        random_secrets.token_hex(32)
    made = LateProvider(key).register_webhook("socialpost", url, secret,
                                              sorted(provider_hooks.LATE_OUTCOMES))
    return made["id"], secret


def _forget_earlier(provider: str, key: str, webhook_id: str) -> None:
    """Remove the registration this one replaces: it would go on sending events signed
    with a secret we no longer keep (each one refused with a 401, and retried)."""
    from providers.errors import ProviderCallError
    from providers.postforme import PostForMeProvider

    if provider != "postforme":  # LATE documents no way to remove a webhook
        note(f"late: the earlier webhook {webhook_id} is still registered with LATE "
             "(signed with the same secret); remove it in LATE's dashboard")
        return
    try:
        PostForMeProvider(key).delete_webhook(webhook_id)
    except ProviderCallError as exc:
        if exc.outcome.http_status != 404:  # already gone is what we wanted
            note(f"postforme: could not remove the earlier webhook {webhook_id} "
                 f"({exc.outcome.error}); remove it by hand")


EXAMPLES = """\b
Examples:
  socialpost hooks register --url https://posts.example.com
  socialpost hooks register --url https://posts.example.com --provider late --show-secrets
"""


@hooks.command("register", epilog=EXAMPLES)
@click.option("--url", required=True, metavar="URL",
              help="Our API's public base URL, e.g. https://posts.example.com (the paths "
                   "/hooks/postforme and /hooks/late are added).")
@click.option("--provider", "only", type=click.Choice(sorted(PATHS)), multiple=True,
              help="Register with this provider only (repeatable; default: both).")
@click.option("--show-secrets", is_flag=True,
              help="Also print the secrets as POSTFORME_WEBHOOK_SECRET=... lines on stdout.")
def register(url: str, only: tuple[str, ...], show_secrets: bool) -> None:
    """Register our URL with both providers; store their secrets.

    PostForMe (POST /webhooks) and LATE (POST /webhooks/settings) are asked with the
    global keys; each endpoint's secret is stored encrypted, and the API accepts it at
    once.
    """
    import settings
    from db import hooks as repo
    from db.vault import Vault
    from providers.errors import ProviderCallError

    if not url.startswith(("https://", "http://")):
        raise click.BadParameter("must be an http(s) URL, e.g. https://posts.example.com",
                                 param_hint="--url")
    base = url.rstrip("/")
    wanted = list(only) or sorted(PATHS)
    with cli_errors():
        keys = settings.current().global_keys()
        vault = Vault.from_env()
        missing = [p for p in wanted if p not in keys]
        if missing:
            names = ", ".join(f"{p.upper()}_API_KEY" for p in missing)
            raise click.ClickException(f"set {names} (webhooks are registered with the "
                                       "global keys), or pass --provider for the other")
        done: list[tuple[str, str, str | None, str]] = []
        with db_connection() as conn:
            earlier = {r["provider"]: r["webhook_id"] for r in repo.registrations(conn)}
            late_secret = repo.stored_secret(conn, vault, "late") if "late" in earlier \
                else None
        for provider in wanted:
            endpoint = base + PATHS[provider]
            try:
                hook_id, secret = _register(provider, keys[provider], endpoint, late_secret)
            except ProviderCallError as exc:
                raise click.ClickException(
                    f"{provider}: registering {endpoint} failed: {exc.outcome.error}; "
                    "nothing stored for it") from None
            with db_connection() as conn:
                repo.save_registration(conn, vault, provider, endpoint, hook_id, secret)
            done.append((provider, endpoint, hook_id, secret))
            old = earlier.get(provider)
            if old and old != hook_id:
                _forget_earlier(provider, keys[provider], old)
    click.echo(table(["provider", "url", "webhook id"], [d[:3] for d in done]), err=True)
    note("stored the secrets encrypted; the API accepts them now")
    if show_secrets:
        for provider, _, _, secret in done:
            click.echo(f"{SETTING[provider]}={secret}")


@hooks.command("list")
@click.option("--json", "as_json", is_flag=True, help="JSON on stdout.")
def list_cmd(as_json: bool) -> None:
    """Where each provider sends its webhooks (never the secrets)."""
    from db import hooks as repo

    with cli_errors(), db_connection() as conn:
        rows: list[dict[str, Any]] = repo.registrations(conn)
    shown = [{k: r[k] for k in ("provider", "url", "webhook_id", "registered_at")}
             for r in rows]
    if as_json:
        echo_json(shown)
        return
    if not shown:
        note("no webhooks registered (run `socialpost hooks register --url URL`)")
        return
    click.echo(table(["provider", "url", "webhook id", "registered"],
                     [(r["provider"], r["url"], r["webhook_id"], when(r["registered_at"]))
                      for r in shown]))
