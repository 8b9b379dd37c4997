"""The instructor's class page: a JupyterHub service (``/services/class/``).

Each student with their labs (up or down) and the check results of every lesson (right,
wrong, not tried, as the lessons' check cells recorded them), a plot of the class's progress
per exercise, and a button that rebuilds a student's lab. Only hub admins (the instructor)
may open it; it asks the broker (as root, an admin there) for the class.
"""

from __future__ import annotations

import html
import json
import os
from typing import Any

import pandas as pd

from ..errors import LabError
from ..plots.progress import class_progress
from ..tables import CHECKS
from .client import call


def class_status() -> dict:
    return call({"op": "class"})[0]


def checks_frame(status: dict) -> pd.DataFrame:
    return CHECKS.frame({"student": s["student"], **r} for s in status["students"] for r in s["checks"])


def page(status: dict, prefix: str, xsrf: str, message: str = "") -> str:
    """The page's HTML: a table per student, the progress plot (plotly.js inline: offline)."""
    students = [s["student"] for s in status["students"]]
    checks = checks_frame(status)
    fig = class_progress(checks, students)
    plot = fig.to_html(full_html=False, include_plotlyjs=True, div_id="progress")
    exercises = list(dict.fromkeys(checks.lesson.where(checks.lesson != "", "?") + ": " + checks.question))
    head = "".join(f"<th>{html.escape(e)}</th>" for e in exercises)
    rows = []
    for s in status["students"]:
        got = {(r["lesson"] or "?") + ": " + r["question"]: r["verdict"] for r in s["checks"]}
        labs = (
            ", ".join(
                f"{lab['lab']} ({'up' if lab['up'] else 'down'}"
                + (f", {lab.get('pods', 0)} pods" if lab["up"] else "")
                + (f", {len(lab['problems'])} problems: {'; '.join(lab['problems'])}" if lab.get("problems") else "")
                + ")"
                for lab in s["labs"]
            )
            or "no lab"
        )
        verdicts = [got.get(e, "not tried") for e in exercises]
        cells = "".join(f"<td class='v {v.replace(' ', '-')}'>{html.escape(v)}</td>" for v in verdicts)
        reset = (
            f"<form method='post' action='{prefix}reset'><input type='hidden' name='_xsrf' value='{xsrf}'>"
            f"<input type='hidden' name='student' value='{html.escape(s['student'])}'>"
            f"<button type='submit'>reset lab</button></form>"
        )
        mem = f"{s['memory_bytes'] / 2**20:.0f} MiB"
        rows.append(
            f"<tr data-student='{html.escape(s['student'])}'><td>{html.escape(s['student'])}</td>"
            f"<td class='labs'>{html.escape(labs)}</td><td>{mem}</td>{cells}<td>{reset}</td></tr>"
        )
    note = f"<p class='message'>{html.escape(message)}</p>" if message else ""
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>labkit: the class</title>
<style>body{{font-family:sans-serif;margin:2em}} table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:4px 8px}} .right{{background:#d7f5dd}} .wrong{{background:#fbd5da}}
.not-tried{{color:#777}}</style></head><body>
<h1>The class</h1>{note}
<table id="class"><tr><th>student</th><th>labs</th><th>memory</th>{head}<th></th></tr>{"".join(rows)}</table>
{plot}
<script type="application/json" id="status">{html.escape(json.dumps(status))}</script>
</body></html>"""


def make_app() -> Any:
    """The tornado application (jupyterhub's HubOAuth decides who may see it)."""
    from jupyterhub.services.auth import HubOAuthCallbackHandler, HubOAuthenticated  # heavy optional import
    from jupyterhub.utils import url_path_join
    from tornado import web

    prefix = os.environ.get("JUPYTERHUB_SERVICE_PREFIX", "/services/class/")

    class Base(HubOAuthenticated, web.RequestHandler):
        def admin(self) -> dict:
            user = self.get_current_user()
            if not user or not user.get("admin"):
                raise web.HTTPError(403, "only the instructor sees the class page")
            return user

    class ClassPage(Base):
        @web.authenticated
        def get(self) -> None:
            self.admin()
            self.write(page(class_status(), prefix, self.xsrf_token.decode(), self.get_argument("message", "")))

    class Reset(Base):
        @web.authenticated
        def post(self) -> None:
            self.admin()
            student = self.get_argument("student")
            try:
                message = call({"op": "reset", "student": student, "lab": "default"}, timeout=300)[0]
            except LabError as e:
                message = str(e)
            self.redirect(url_path_join(prefix, "") + "?" + "message=" + web.escape.url_escape(message))

    class Status(Base):
        @web.authenticated
        def get(self) -> None:
            self.admin()
            self.set_header("Content-Type", "application/json")
            self.write(json.dumps(class_status()))

    return web.Application(
        [
            (prefix, ClassPage),
            (url_path_join(prefix, "reset"), Reset),
            (url_path_join(prefix, "status.json"), Status),
            (url_path_join(prefix, "oauth_callback"), HubOAuthCallbackHandler),
        ],
        cookie_secret=os.urandom(32),
        xsrf_cookies=True,
    )


def main() -> None:
    from urllib.parse import urlparse

    from tornado.ioloop import IOLoop

    url = urlparse(os.environ.get("JUPYTERHUB_SERVICE_URL", "http://127.0.0.1:8082"))
    make_app().listen(url.port or 8082, url.hostname or "127.0.0.1")
    IOLoop.current().start()


if __name__ == "__main__":
    main()
