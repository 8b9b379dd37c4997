"""``labkit doctor``: one check type for every backend, and how checks are printed.

Each backend answers ``Backend.doctor()`` with a list of :class:`Check` (the embedded
backend: root, tools, namespaces, cgroups, bcc; the kind backend: docker, kind, kubectl,
helm and the cluster's health). Every failed check carries the fix.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str = ""
    fix: str = ""


def probe(argv: list[str], timeout: float = 60) -> tuple[bool, str]:
    """(exit code was 0, last line printed) of ``argv``; never raises."""
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as e:
        return False, str(e)
    lines = (r.stdout + r.stderr).strip().splitlines()
    return r.returncode == 0, lines[-1] if lines else ""


def format_checks(checks: list[Check]) -> str:
    """One line per check, the fix indented under a failure."""
    lines = []
    for c in checks:
        detail = f": {c.detail}" if c.detail else ""
        lines.append(f"{'ok  ' if c.ok else 'FAIL'}  {c.name}{detail}")
        if not c.ok and c.fix:
            lines.append(f"      fix: {c.fix}")
    return "\n".join(lines)
