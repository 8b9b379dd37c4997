"""Where a lab came from: the checkout that built it, when, and the lab it was made for.

A small file next to the state (/run/labkit/<lab>/origin.json), apart from it on purpose:
the state file says how to reach the lab, this one says whose it is. ``labkit list`` shows
it, ``labkit down --lab X`` removes X's companions (the labs a lesson made for X, e.g. its
kernel-routing or tc-LB contrast), and ``down --all`` asks before removing labs built from
another checkout (another learner's, on a shared machine).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from ..spec import REPO
from .names import LabNames

CHECKOUT = str(REPO)  # the labkit checkout this code runs from


@dataclass
class Origin:
    checkout: str = ""  # '' when unknown (a lab built by an older labkit)
    created: float | None = None  # seconds since the epoch, when `up` finished
    companion_of: str = ""  # the lab a lesson made this one for


def path(names: LabNames) -> Path:
    return names.state_dir / "origin.json"


def load(names: LabNames) -> Origin:
    """The lab's origin; an empty one when unknown or unreadable (it is informative only)."""
    try:
        d = json.loads(path(names).read_text())
        return Origin(str(d.get("checkout", "")), d.get("created"), str(d.get("companion_of", "")))
    except (OSError, ValueError, AttributeError):
        return Origin()


def save(names: LabNames, origin: Origin) -> None:
    if not names.state_dir.exists():
        return  # the lab is gone: nothing to describe
    tmp = path(names).with_suffix(".tmp")
    tmp.write_text(json.dumps(asdict(origin), sort_keys=True))
    os.replace(tmp, path(names))


def record_up(names: LabNames) -> None:
    """Called when `up` built the lab: this checkout, now (a companion mark is kept)."""
    old = load(names)
    save(names, Origin(CHECKOUT, time.time(), old.companion_of))


def mark_companion(names: LabNames, of: str) -> None:
    """``names``' lab was made for lab ``of``: `down` of ``of`` removes it too."""
    o = load(names)
    o.companion_of = of
    save(names, o)
