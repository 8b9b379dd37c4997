"""The one exception type of labkit, and the exit statuses of the ``labkit`` command.

Every bad input and every failed operation surfaces as a :class:`LabError` whose message is
one line saying what was wrong and what to do. The CLI prints it and exits with its
``exit_code``: :attr:`ExitStatus.USAGE` (2) for bad input or usage, :attr:`ExitStatus.FAILURE`
(1) for an operation that failed on good input. A LabError often hides the exception that
caused it (``raise ... from None``); ``labkit --traceback`` (or ``LABKIT_DEBUG=1``) shows it.
"""

from __future__ import annotations

import enum
import warnings


class ExitStatus(enum.IntEnum):
    """Exit codes of ``labkit`` (a command run by ``exec`` passes its own code through)."""

    SUCCESS = 0
    FAILURE = 1  # an operation failed on good input (a compile error, a cell that failed)
    USAGE = 2  # bad usage or bad input: the message says what to change
    INTERRUPTED = 130  # Ctrl-C


class LabError(Exception):
    """A clear, one-line error for the learner; never a traceback."""

    def __init__(self, message: str, *, exit_code: int = ExitStatus.USAGE) -> None:
        text = " ".join(str(message).split())
        super().__init__("".join(c if c.isprintable() else repr(c)[1:-1] for c in text))
        self.exit_code = ExitStatus(exit_code)


class LabWarning(UserWarning):
    """A one-line notice that something was not what the user asked for but labkit went on
    (a helm key real helm would ignore, a cache entry rebuilt, a lab busy): the CLI prints
    it as ``labkit: warning: ...`` on stderr; in Python it is an ordinary warning."""


def notice(message: str) -> None:
    """Warn with a :class:`LabWarning` (one line)."""
    warnings.warn(LabWarning(" ".join(str(message).split())), stacklevel=2)
