"""The class's progress per exercise (the instructor's page): from the CHECKS table."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

VERDICT_COLORS = {"right": "#1a7f37", "wrong": "#b00020", "not tried": "#9e9e9e"}


def class_progress(
    checks: pd.DataFrame, students: list[str], title: str = "The class, exercise by exercise"
) -> go.Figure:
    """One stacked bar per exercise: how many students got it right, wrong, or have not
    tried it yet (students with no record for it count as not tried)."""
    fig = go.Figure()
    if checks.empty:
        fig.add_annotation(
            text="no check cells run yet", showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper", font=dict(size=14)
        )
        fig.update_layout(title=title, xaxis=dict(visible=False), yaxis=dict(visible=False), height=250)
        return fig
    label = (checks.lesson.where(checks.lesson != "", "?") + ": " + checks.question).rename("exercise")
    latest = checks.assign(exercise=label).sort_values("time").drop_duplicates(["student", "exercise"], keep="last")
    exercises = list(dict.fromkeys(label))
    counts: dict[str, list[int]] = {v: [] for v in VERDICT_COLORS}
    for ex in exercises:
        seen = latest[latest.exercise == ex]
        for v in ("right", "wrong"):
            counts[v].append(int((seen.verdict == v).sum()))
        counts["not tried"].append(len(students) - counts["right"][-1] - counts["wrong"][-1])
    for verdict, color in VERDICT_COLORS.items():
        fig.add_bar(name=verdict, x=exercises, y=counts[verdict], marker_color=color)
    fig.update_layout(
        title=title, barmode="stack", yaxis=dict(title="students", dtick=1), height=380, legend=dict(orientation="h")
    )
    return fig
