"""The one exception type of labkit.

Every bad input and every failed operation surfaces as a :class:`LabError` whose message is
one line saying what was wrong and what to do. The CLI prints it and exits with
``exit_code`` (2 for bad input or usage, 1 for an operation that failed on good input).
"""
from __future__ import annotations


class LabError(Exception):
    """A clear, one-line error for the learner; never a traceback."""

    def __init__(self, message: str, *, exit_code: int = 2) -> None:
        super().__init__(" ".join(str(message).split()))
        self.exit_code = exit_code
