"""Check results of the lessons, per student: what ``lesson.check`` cells record and the
instructor's page reads.

A record is (lesson, question, verdict: "right" | "wrong" | "not tried"). In a classroom the
student's kernel sends it to the broker, which stores it under the name the socket's
credentials say (a student cannot write another's); elsewhere nothing is recorded.
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path
from typing import Any

from .protocol import CLASSROOM_ROOT, recv_reply, send_request, socket_path

VERDICTS = ("right", "wrong", "not tried")
DIR = CLASSROOM_ROOT / "progress"
MAX_TEXT = 200


def lesson_name() -> str:
    """The notebook this kernel runs (Jupyter sets JPY_SESSION_NAME), e.g. "02-same-node"."""
    name = os.environ.get("JPY_SESSION_NAME", "")
    return Path(name).stem if name else ""


def send(question: str, verdict: str, lesson: str | None = None) -> bool:
    """Record a check through the broker when there is one; False when there is none."""
    path = socket_path()
    if not path.exists():
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(5)
            s.connect(str(path))
            send_request(
                s, {"op": "record", "lesson": lesson or lesson_name(), "question": question, "verdict": verdict}
            )
            recv_reply(s)
        return True
    except OSError:
        return False


def record(student: str, lesson: Any, question: Any, verdict: Any) -> None:
    """Append one check result to the student's record (the broker calls this)."""
    from ..errors import LabError

    if verdict not in VERDICTS or not isinstance(question, str) or not isinstance(lesson, str):
        raise LabError(f"a check record needs a lesson, a question and a verdict in {', '.join(VERDICTS)}")
    DIR.mkdir(parents=True, exist_ok=True)
    line = {"time": time.time(), "lesson": lesson[:MAX_TEXT], "question": question[:MAX_TEXT], "verdict": verdict}
    with open(DIR / f"{student}.jsonl", "a") as f:
        f.write(json.dumps(line) + "\n")


def read(student: str) -> list[dict]:
    """The latest verdict of each (lesson, question) the student checked, in order first seen."""
    latest: dict[tuple[str, str], dict] = {}
    try:
        lines = (DIR / f"{student}.jsonl").read_text().splitlines()
    except FileNotFoundError:
        return []
    for line in lines:
        try:
            r = json.loads(line)
            latest[(r["lesson"], r["question"])] = r
        except (ValueError, KeyError, TypeError):
            continue
    return list(latest.values())
