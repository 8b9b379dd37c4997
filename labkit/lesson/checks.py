"""Checking a learner's predictions: right or wrong, with a hint."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from IPython.display import HTML, display

from ..classroom import progress


def check(
    question: str, answer: Any, expected: Any, *, hint: str = "", compare: Callable[[Any, Any], bool] | None = None
) -> None:
    """Tell the learner whether ``answer`` (their prediction) matches what the lab showed.
    Displays the verdict (nothing returned, so the cell shows only that)."""
    if answer is None or answer is Ellipsis:
        progress.send(question, "not tried")  # in a classroom, the instructor's page shows it
        display(
            HTML(
                f"<div style='color:#555'>✍️ <b>{question}</b>: write your prediction in the cell above, "
                f"run it, then run this cell again.</div>"
            )
        )
        return
    ok = compare(answer, expected) if compare else _norm(answer) == _norm(expected)
    progress.send(question, "right" if ok else "wrong")
    if ok:
        display(HTML(f"<div style='color:#1a7f37'>✅ <b>{question}</b>: right. The lab shows {_show(expected)}.</div>"))
    else:
        display(
            HTML(
                f"<div style='color:#b00'>❌ <b>{question}</b>: not quite, you said {_show(answer)}. "
                f"Hint: {hint or 'look at the capture again'}</div>"
            )
        )


def _norm(v: Any) -> Any:
    if isinstance(v, (set, frozenset, list, tuple)):
        return frozenset(_norm(x) for x in v)
    if isinstance(v, str):
        return v.strip().lower()
    return v


def _show(v: Any) -> str:
    if isinstance(v, (set, frozenset, list, tuple)):
        return "{" + ", ".join(sorted(map(str, v))) + "}"
    return repr(v)
