"""The demo's human output, kept apart because every other part writes to it.

Why it exists: progress goes to stdout, or to stderr when stdout carries the --json
summary; on a terminal a progress line is rewritten in place, elsewhere (logs, tests) each
one is a new line.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import TextIO

import click


@dataclass
class Out:
    """Human output: stdout normally, stderr when stdout carries the --json summary."""

    to_stderr: bool
    _progress_shown: bool = False

    @property
    def stream(self) -> TextIO:
        return sys.stderr if self.to_stderr else sys.stdout

    def line(self, text: str = "") -> None:
        self.end_progress()
        click.echo(text, file=self.stream)

    def progress(self, text: str) -> None:
        """Rewrite one line in a terminal; elsewhere (logs, tests) print it as a new line."""
        if self.stream.isatty():
            self.stream.write("\r\033[K" + text)
            self.stream.flush()
            self._progress_shown = True
        else:
            click.echo(text, file=self.stream)

    def end_progress(self) -> None:
        if self._progress_shown:
            self.stream.write("\n")
            self.stream.flush()
            self._progress_shown = False
