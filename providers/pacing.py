"""Fleet-wide pacing of provider calls: one budget per provider key (skeleton; see below).

Calls made inside `background()` are background calls (results polling, account
refreshes): they take at most a share of a key's budget and yield to creates.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from enum import Enum


class Priority(str, Enum):
    CREATE = "create"  # everything a publish attempt calls: first in line
    BACKGROUND = "background"  # polling and refreshes: a capped share, yields to creates


_priority: contextvars.ContextVar[Priority] = contextvars.ContextVar(
    "socialpost_priority", default=Priority.CREATE)


@contextlib.contextmanager
def background() -> Iterator[None]:
    """Calls made inside are background calls (see the module docstring)."""
    token = _priority.set(Priority.BACKGROUND)
    try:
        yield
    finally:
        _priority.reset(token)


def current_priority() -> Priority:
    return _priority.get()
