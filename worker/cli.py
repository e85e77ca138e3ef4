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
