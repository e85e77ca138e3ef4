"""What every operator command shares: one-line errors, a database connection that fails
fast, and parsing of the options several commands take.

Expected failures (bad input, database or broker unreachable, unknown ids) must reach
the operator as one line on stderr with a non-zero exit, never as a traceback.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import IO, Any

import click

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}
DB_CONNECT_TIMEOUT = 10  # seconds; a black-holed host must not hang the command


class BadInput(click.ClickException):
    """Input the command refuses (a malformed id, platform or time): exit 2, like usage."""

    exit_code = 2


class Interrupted(click.ClickException):
    """Ctrl-C while following posts: the conventional 130, with what still goes on."""

    exit_code = 130


class OneLineUsage(click.UsageError):
    """Click's usage errors, shown as one line (with a pointer to --help) instead of three."""

    def show(self, file: IO[Any] | None = None) -> None:
        hint = f" (see '{self.ctx.command_path} --help')" if self.ctx is not None else ""
        click.echo(f"Error: {self.format_message()}{hint}", err=True, file=file)


def _one_line(exc: click.UsageError) -> OneLineUsage:
    if isinstance(exc, OneLineUsage):
        return exc
    return OneLineUsage(exc.format_message(), exc.ctx)


class _OneLineUsageErrors(click.Command):
    """Usage errors raised while parsing or invoking, shown as one line. Mixed into
    Command and Group (a click.Group is a click.Command: one method resolution order)."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except click.UsageError as exc:
            raise _one_line(exc) from None

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.UsageError as exc:
            raise _one_line(exc) from None


class Command(_OneLineUsageErrors):
    """A click command whose usage errors are one line."""


class Group(_OneLineUsageErrors, click.Group):
    """A click group whose usage errors (and its subcommands') are one line."""

    command_class = Command


def first_line(exc: BaseException) -> str:
    """The first non-empty line of an exception's message (drivers add hint lines)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


def _translate(exc: Exception) -> click.ClickException | None:
    """The one-line error for `exc`, or None when it is a bug (keep its traceback).

    Only modules already imported are consulted: a command that never touched the broker
    does not import kombu just to classify an error."""
    mods = sys.modules
    if "tasks.validation" in mods and isinstance(exc, mods["tasks.validation"].InvalidRequest):
        return BadInput(str(exc))
    if "db.errors" in mods:
        errors = mods["db.errors"]
        if isinstance(exc, errors.InvalidInput):
            return BadInput(str(exc))
        if isinstance(exc, errors.DbError):
            return click.ClickException(str(exc))
    if "settings" in mods and isinstance(exc, mods["settings"].SettingsError):
        return click.ClickException(str(exc))
    if "psycopg" in mods:
        psycopg = mods["psycopg"]
        if isinstance(exc, psycopg.OperationalError):
            return click.ClickException(f"cannot reach the database: {first_line(exc)}")
        if isinstance(exc, psycopg.Error):
            return click.ClickException(f"database error: {first_line(exc)}")
    if "kombu.exceptions" in mods and isinstance(exc, mods["kombu.exceptions"].OperationalError):
        return click.ClickException(
            f"cannot reach the broker (REDIS_URL / CELERY_BROKER_URL): {first_line(exc)}"
        )
    return None


@contextmanager
def cli_errors() -> Iterator[None]:
    """Turn the errors an operator can act on into one-line ClickExceptions.

    Bad input (our validators raise ValueError subclasses naming the field) exits 2;
    unreachable services, missing rows and bad settings exit 1.
    """
    try:
        yield
    except click.ClickException:
        raise
    except Exception as exc:
        translated = _translate(exc)
        if translated is None:
            raise
        raise translated from None


@contextmanager
def db_connection() -> Iterator[Any]:
    """One autocommit connection for this command (no pool: a CLI runs a few statements,
    and a refused connection must fail at once rather than after the pool's timeout)."""
    import psycopg
    from psycopg.conninfo import conninfo_to_dict
    from psycopg.rows import dict_row

    from db import config

    dsn = config.database_url()
    extra: dict[str, Any] = {}
    if "connect_timeout" not in conninfo_to_dict(dsn):
        extra["connect_timeout"] = DB_CONNECT_TIMEOUT
    with psycopg.connect(dsn, autocommit=True, row_factory=dict_row, **extra) as conn:
        yield conn


def split_list(values: Iterable[str]) -> list[str]:
    """Repeatable options that also take comma lists: -p twitter -p x,linkedin."""
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


def platforms_option(values: Iterable[str], strict: bool = True) -> list[str]:
    """Canonical platform names ("x" -> twitter, no repeats) from repeatable -p options.

    strict: none, or an unknown name, is bad input naming the option. Otherwise the
    names go back as given, for the client to refuse along with every other bad field."""
    from providers.platforms import normalize_platforms

    names = split_list(values)
    if not names and strict:
        raise BadInput("--platform: name at least one platform (repeat -p or use a comma list)")
    try:
        return normalize_platforms(names)
    except ValueError as exc:
        if not strict:
            return names
        raise BadInput(f"--platform: {exc}") from None


def read_text_argument(value: str | None, what: str) -> str:
    """The argument itself, or stdin when it is '-'."""
    if value is None:
        raise BadInput(f"{what}: is required (give it as an argument, or - to read stdin)")
    if value != "-":
        return value
    stdin = sys.stdin
    if stdin.isatty():
        click.echo(f"reading {what} from stdin; end with Ctrl-D", err=True)
    return stdin.read().rstrip("\n")


def note(message: str) -> None:
    """Progress and hints go to stderr, so stdout carries only the result."""
    click.echo(message, err=True)
