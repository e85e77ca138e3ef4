"""`--override PLATFORM.FIELD=VALUE` and `--overrides FILE` for `socialpost post`: the
per-platform content and options (providers.content) from a shell.

A VALUE is text as typed, except JSON where text cannot say it: `true`, `false`,
`null`, a list `[...]`, an object `{...}` or a quoted string. The file (JSON, `-` for
stdin) gives the rest; an --override wins over the file for its field. Checking is the
client's (every problem at once, each naming overrides.<platform>.<field>).
"""

from __future__ import annotations

import json
from typing import Any, TextIO

import click

from providers.platforms import normalize_platform
from worker.commands.common import BadInput

OVERRIDE_HELP = ("Per-platform field (repeatable): youtube.title=Launch, "
                 "linkedin.content='Longer words', tiktok.express_consent_given=true, "
                 "twitter.thread='[\"part 2\", \"part 3\"]'.")
FILE_HELP = ('JSON file (- for stdin) of per-platform content and options: '
             '{"youtube": {"title": "Launch", "privacy": "unlisted"}, ...}.')


def _value(text: str) -> Any:
    stripped = text.strip()
    if stripped in ("true", "false", "null") or stripped[:1] in ("[", "{", '"'):
        try:
            return json.loads(stripped)
        except json.JSONDecodeError as exc:
            raise BadInput(f"--override: not valid JSON ({exc.msg} at char {exc.pos}) in "
                           f"{text!r}; quote plain text that starts with [, {{ or \"") from None
    return text


def _key(platform: str) -> str:
    return normalize_platform(platform) or platform.strip()


def read_overrides(values: tuple[str, ...], stream: TextIO | None) -> dict[str, Any] | None:
    """The file's overrides with each --override applied on top; None when neither."""
    out: dict[str, dict[str, Any]] = {}
    if stream is not None:
        try:
            loaded = json.load(stream)
        except json.JSONDecodeError as exc:
            raise BadInput(f"--overrides: not valid JSON ({exc.msg} at line {exc.lineno})"
                           ) from None
        if not isinstance(loaded, dict) or not all(isinstance(v, dict) for v in loaded.values()):
            raise BadInput("--overrides: must be a JSON object of platform -> {field: value}")
        for platform, fields in loaded.items():
            out.setdefault(_key(platform), {}).update(fields)
    for value in values:
        target, sep, raw = value.partition("=")
        platform, dot, field = target.partition(".")
        if not sep or not dot or not platform.strip() or not field.strip():
            raise BadInput(f"--override: expected PLATFORM.FIELD=VALUE, got {value!r}")
        out.setdefault(_key(platform), {})[field.strip()] = _value(raw)
    return out or None


def overrides_options(func: Any) -> Any:
    """The two options, for a click command."""
    func = click.option("--overrides", "overrides_file", type=click.File("r"),
                        metavar="FILE", help=FILE_HELP)(func)
    return click.option("--override", "override_values", multiple=True,
                        metavar="PLATFORM.FIELD=VALUE", help=OVERRIDE_HELP)(func)
