"""Checking a learner's predictions: right or wrong, with a hint, and never a spoiler.

``check`` with no prediction says so and reveals nothing; ``reveal`` shows an answer-giving
output only once the prediction it answers was written, so Run All spoils nothing. In a
static page (`labkit export`) there is nobody to predict: the check names what the lab
showed and ``reveal`` shows everything.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any

from IPython.display import HTML, display

from ..classroom import progress
from ..i18n import N_, _
from ..widgets.static import exporting

SHOW_ANSWERS = False
"""Set ``lesson.checks.SHOW_ANSWERS = True`` (instructors) to reveal without predicting."""


def unanswered(answer: Any) -> bool:
    return answer is None or answer is Ellipsis


def check(
    question: str, answer: Any, expected: Any, *, hint: str = "", compare: Callable[[Any, Any], bool] | None = None
) -> None:
    """Tell the learner whether ``answer`` (their prediction) matches what the lab showed.
    Displays the verdict (nothing returned, so the cell shows only that). ``question`` and
    ``hint`` are English (the catalog translates them, as every notebook's are); the
    instructor's page gets the English question, one key whatever each learner reads."""
    q = html.escape(_(question))
    if unanswered(answer):
        progress.send(question, "not tried")  # in a classroom, the instructor's page shows it
        if exporting() or SHOW_ANSWERS:
            text = _("{question}: the lab showed {expected}.").format(question=f"<b>{q}</b>", expected=_show(expected))
            display(HTML(f"<div style='color:#555'>📝 {text}</div>"))
            return
        text = _(
            "{question}: no prediction yet, so no answer either. Write yours in the cell above, run it, "
            "then run this cell again."
        ).format(question=f"<b>{q}</b>")
        display(HTML(f"<div style='color:#555'>✍️ {text}</div>"))
        return
    ok = compare(answer, expected) if compare else _norm(answer) == _norm(expected)
    progress.send(question, "right" if ok else "wrong")
    if ok:
        text = _("{question}: right. The lab shows {expected}.").format(
            question=f"<b>{q}</b>", expected=_show(expected)
        )
        display(HTML(f"<div style='color:#1a7f37'>✅ {text}</div>"))
    else:
        text = _("{question}: not quite, you said {answer}. Hint: {hint}").format(
            question=f"<b>{q}</b>",
            answer=_show(answer),
            hint=html.escape(_(hint) if hint else _("look at the capture again")),
        )
        display(HTML(f"<div style='color:#b00'>❌ {text}</div>"))


def reveal(obj: Any, *, after: Any, what: str = N_("this")) -> Any:
    """``obj`` (to display), once prediction ``after`` was written; until then a note.

    A notebook cell ends with ``lesson.reveal(table, after=my_prediction)``: with no
    prediction yet the learner sees why nothing is shown, not the answer."""
    if unanswered(after) and not (exporting() or SHOW_ANSWERS):
        shown = html.escape(_(what))
        text = _(
            "{what} gives the answer away: it shows once you have written your prediction above (and run that cell)."
        ).format(what=shown)
        return HTML(f"<div style='color:#555'>🙈 {text}</div>")
    return obj


def _norm(v: Any) -> Any:
    if isinstance(v, (set, frozenset, list, tuple)):
        return frozenset(_norm(x) for x in v)
    if isinstance(v, str):
        return v.strip().lower()
    return v


def _show(v: Any) -> str:
    if isinstance(v, (set, frozenset, list, tuple)):
        return "{" + ", ".join(sorted(html.escape(str(x)) for x in v)) + "}"
    return html.escape(repr(v))
