"""`socialpost`: one command for operators. Subcommands live in worker/commands/,
loaded only when named, so `socialpost --help` stays fast and one broken
subsystem never hides the others."""

from __future__ import annotations

import importlib
import sys

import click

# name -> (module, attribute, one-line help shown in `socialpost --help`)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "migrate": (
        "worker.commands.db",
        "migrate",
        "Create the database if needed and apply migrations.",
    ),
    "credentials": (
        "worker.commands.db",
        "credentials",
        "Store, list, delete or re-encrypt API keys.",
    ),
    "sandbox": (
        "worker.commands.sandbox",
        "sandbox",
        "Serve a local PostForMe + LATE for tests and demos.",
    ),
    "demo": (
        "worker.commands.demo",
        "demo",
        "See it all work: a campaign to nine platforms, scheduled batch, failover.",
    ),
    "api": ("worker.commands.api", "api", "Serve the HTTP API (FastAPI on uvicorn)."),
    "tokens": ("worker.commands.tokens", "tokens", "Create, list or revoke HTTP API tokens."),
    "hooks": ("worker.commands.hooks", "hooks",
              "Register our webhook endpoints with PostForMe and LATE."),
    "worker": ("worker.commands.procs", "worker", "Run a Celery worker (publishing, maintenance)."),
    "beat": ("worker.commands.procs", "beat", "Run Celery beat (releases, recovery, refreshes)."),
    "flower": ("worker.commands.procs", "flower", "Run Flower, with basic auth required."),
    "post": ("worker.commands.publish", "post", "Enqueue one post; print its id."),
    "batch": ("worker.commands.publish", "batch", "Enqueue one batch of a campaign's calendar."),
    "cancel": ("worker.commands.publish", "cancel", "Cancel a scheduled or queued post."),
    "campaign": (
        "worker.commands.campaign",
        "campaign",
        "Create, show or publish a campaign's creative calendar.",
    ),
    "dead-letters": (
        "worker.commands.deadletters",
        "dead_letters",
        "List or replay publish requests that intake could not take.",
    ),
    "history": ("worker.commands.history", "history", "A user's posts, newest first."),
    "webhooks": (
        "worker.commands.webhooks",
        "webhooks",
        "Endpoints told of post events (signed webhooks) and their delivery log.",
    ),
    "show": ("worker.commands.history", "show", "One post with its targets and attempts."),
    "accounts": (
        "worker.commands.accounts",
        "accounts",
        "Connected accounts per credential of a user's chain.",
    ),
    "oauth-url": (
        "worker.commands.accounts",
        "oauth_url",
        "Print the URL where a user connects a platform.",
    ),
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        module_name, attr, _ = COMMANDS[cmd_name]
        command = getattr(importlib.import_module(module_name), attr)
        assert isinstance(command, click.Command)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name][2]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """Publish social-media posts through PostForMe and LATE, with failover.

    Configuration comes from the environment (DATABASE_URL, REDIS_URL,
    ENCRYPTION_KEY, POSTFORME_API_KEY, LATE_API_KEY, ...); see README.md.
    """


def main(argv: list[str] | None = None) -> None:
    """Entry point: click handles --help; our own errors become one line and exit 1."""
    try:
        cli.main(args=argv, prog_name="socialpost", standalone_mode=True)
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
