"""What every command shares: one-line messages, the exit codes, and signals handled as Ctrl-C."""

from __future__ import annotations

import re

import click

EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def say(message: str) -> None:
    """One line on stderr, whatever a file name holds (a newline in it is shown as \\n)."""
    click.echo(re.sub(r"[\x00-\x1f\x7f]", lambda m: repr(m.group())[1:-1], message), err=True)


def fail(err: Exception, verbose: bool) -> None:
    if verbose:
        import traceback

        traceback.print_exc()
    say(f"fervid: error: {err}")


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP, handled as Ctrl-C is: partial outputs removed, then exit 128+N."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


def on_signal(signum, frame) -> None:
    raise Terminated(signum)
