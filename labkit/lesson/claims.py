"""What a lesson's text claims, checked against what this run showed.

Each lesson's experiment returns its tables; its claims are sentences of the notebook's
text, each with the test that makes it true on these tables and the evidence. ``recap``
ends a notebook: it lists every claim with ✅ (and what the run showed), then the
take-aways. A claim this run does not bear out is shown with ❌ and ends the cell with an
error, so a learner is never told what the output beside it does not show, and the tests
that run every notebook again and again fail loudly instead.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from IPython.display import HTML, display

from ..errors import ExitStatus, LabError
from ..i18n import _


@dataclass(frozen=True)
class Claim:
    text: str  # the sentence of the lesson, as the English notebook says it (shown through the catalog)
    holds: bool
    evidence: str  # what this run showed, in a few words


class ClaimNotShown(LabError):
    """The lesson said something this run did not show."""


def claim(text: str, holds: bool, evidence: object = "") -> Claim:
    """``text``: an English sentence (a literal: the catalog's extractor collects every
    ``claim("...")``); ``evidence``: already in the learner's language (``_(...).format``)."""
    return Claim(text, bool(holds), str(evidence))


def failed(claims: Iterable[Claim]) -> list[Claim]:
    return [c for c in claims if not c.holds]


def recap_html(claims: Sequence[Claim], takeaways: Sequence[str] = ()) -> str:
    rows = "".join(
        f"<li>{'✅' if c.holds else '❌'} {html.escape(_(c.text))}"
        + (f" <span style='color:#666'>({html.escape(c.evidence)})</span>" if c.evidence else "")
        + "</li>"
        for c in claims
    )
    more = "".join(f"<li>{html.escape(_(t))}</li>" for t in takeaways)
    return (
        "<div style='border-left:4px solid #1a7f37;padding:0.3em 1em;background:#f6fbf7'>"
        f"<b>{_('Recap: what this run showed')}</b><ul style='list-style:none;padding-left:0.5em'>"
        + rows
        + "</ul>"
        + (f"<b>{_('Take-aways')}</b><ul>{more}</ul>" if more else "")
        + "</div>"
    )


def recap(claims: Sequence[Claim], takeaways: Sequence[str] = ()) -> None:
    """Show the recap; raise if a claim of the lesson did not hold on this run."""
    display(HTML(recap_html(claims, takeaways)))
    bad = failed(claims)
    if bad:
        raise ClaimNotShown(
            _(
                "this run did not show what the lesson says: {claims}. Run the notebook again from the top "
                "(lesson.start rebuilds the lab's state)"
            ).format(claims="; ".join(f"{_(c.text)} ({c.evidence})" for c in bad)),
            exit_code=ExitStatus.FAILURE,
        )
