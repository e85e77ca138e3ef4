"""Plain-text tables and JSON for the operator commands (no dependency beyond click).

Tables are for people: one line per row, cells flattened and clipped so a long caption or
error never wraps the terminal. JSON is for programs: full values, UUIDs and datetimes
as strings.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import click

EMPTY = "-"


def when(value: datetime | None) -> str:
    """UTC to the second, marked Z: operators compare these across machines."""
    if value is None:
        return EMPTY
    if value.tzinfo is not None:
        value = value.astimezone(UTC)
        return value.strftime("%Y-%m-%d %H:%M:%SZ")
    return value.strftime("%Y-%m-%d %H:%M:%S")


def cell(value: object) -> str:
    """One value as table text: None is '-', lists are comma-joined, newlines flattened."""
    if value is None or value == "":
        return EMPTY
    if isinstance(value, datetime):
        return when(value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple | set | frozenset):
        return ",".join(cell(v) for v in value) or EMPTY
    if isinstance(value, Mapping):
        return ",".join(f"{k}={cell(v)}" for k, v in value.items()) or EMPTY
    return " ".join(str(value).split())


def clip(text: str, width: int | None) -> str:
    if width is None or len(text) <= width:
        return text
    return text[: max(width - 1, 0)] + "…"


def table(
    headers: Sequence[str],
    rows: Iterable[Sequence[object]],
    limits: Mapping[str, int] | None = None,
) -> str:
    """Aligned columns under upper-case headers; `limits` caps a column's width by header.

    The last column is not padded, so lines carry no trailing blanks."""
    caps = [dict(limits or {}).get(h) for h in headers]
    body = [[clip(cell(v), caps[i]) for i, v in enumerate(row)] for row in rows]
    head = [h.upper() for h in headers]
    widths = [max([len(head[i])] + [len(r[i]) for r in body]) for i in range(len(head))]
    lines = []
    for row in [head, *body]:
        padded = [c.ljust(w) for c, w in zip(row, widths, strict=True)]
        lines.append("  ".join(padded).rstrip())
    return "\n".join(lines)


def fields(pairs: Iterable[tuple[str, object]]) -> str:
    """A header block: 'label:  value' lines with the values aligned."""
    items = [(label, cell(value)) for label, value in pairs]
    width = max((len(label) for label, _ in items), default=0) + 1
    return "\n".join(f"{(label + ':').ljust(width)}  {value}" for label, value in items)


def _default(value: object) -> object:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, uuid.UUID | Decimal):
        return str(value)
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, bytes | memoryview):
        return None  # never dump raw bytes (ciphertexts) into output
    raise TypeError(f"cannot show {type(value).__name__} as JSON")


def to_json(value: Any) -> str:
    """Indented, key order kept; UUIDs, datetimes and dataclasses become plain JSON."""
    return json.dumps(value, default=_default, indent=2, ensure_ascii=False)


def echo_json(value: Any) -> None:
    click.echo(to_json(value))


def section(title: str, body: str) -> str:
    """A titled block, separated from the previous one by a blank line."""
    return f"\n{title}\n{body}"
