"""The demo's human output, kept apart because every other part writes to it and because
it must survive its reader going away.

Why it exists: progress goes to stdout, or to stderr when stdout carries the --json
summary; on a terminal a progress line is rewritten in place, elsewhere (logs, tests) each
one is a new line. That stream is often a pipe (`socialpost demo | head`, `| tee log`), and
when its reader exits the next write fails with EPIPE. The first such failure stops the demo
(there is nobody left to watch it), but nothing written after it, least of all the
shutdown's own messages, may fail again: the teardown would stop half way and leave the
worker, beat, Flower, Redis and PostgreSQL running.
"""

from __future__ import annotations

import contextlib
import errno
import os
import sys
from dataclasses import dataclass
from typing import TextIO

import click


@dataclass
class Out:
    """Human output: stdout normally, stderr when stdout carries the --json summary."""

    to_stderr: bool
    _progress_shown: bool = False
    closed: bool = False  # the reader went away: further output is dropped

    @property
    def stream(self) -> TextIO:
        return sys.stderr if self.to_stderr else sys.stdout

    def line(self, text: str = "") -> None:
        """One line; raises BrokenPipeError the first time the reader turns out gone."""
        self.end_progress()
        self._echo(text)

    def note(self, text: str) -> None:
        """A line that never raises, for the shutdown: a closed reader (or any other failure
        to write) must not stop it."""
        with contextlib.suppress(OSError):
            self.line(text)

    def progress(self, text: str) -> None:
        """Rewrite one line in a terminal; elsewhere (logs, tests) print it as a new line."""
        if self.stream.isatty():
            self._echo("\r\033[K" + text, nl=False)
            self._progress_shown = True
        else:
            self._echo(text)

    def end_progress(self) -> None:
        if self._progress_shown:
            self._progress_shown = False
            self._echo("")

    def _echo(self, text: str, nl: bool = True) -> None:
        if self.closed:
            return
        try:
            click.echo(text, file=self.stream, nl=nl)  # flushes: a closed pipe shows now
        except OSError as exc:
            if exc.errno != errno.EPIPE:
                raise
            self.closed = True
            _discard(self.stream)
            raise


def _discard(stream: TextIO) -> None:
    """Point the stream's descriptor at /dev/null, so that what is still buffered there,
    Python's flush at exit and click's own messages do not fail on the closed pipe again."""
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, stream.fileno())
        finally:
            os.close(devnull)
