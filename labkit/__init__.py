"""labkit: a Jupyter teaching lab for Cilium native-routing networking.

    import labkit
    lab = labkit.connect()          # the embedded lab "default"
    lab.up(); lab.apply()
    lab.pods

Heavy modules (pandas, bcc) load on first use, so the CLI starts fast. ``LABKIT_VERBOSE=1``
(or ``labkit -v``) logs every command labkit runs to build and read labs.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

from .errors import ExitStatus, LabError

__all__ = ["ExitStatus", "LabError", "connect", "Lab", "verbose"]


def verbose() -> None:
    """Log the commands labkit runs (ip, tc, ...) to stderr."""
    logger = logging.getLogger("labkit")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)


if os.environ.get("LABKIT_VERBOSE") == "1":
    verbose()


def __getattr__(name: str) -> Any:
    if name in ("connect", "Lab"):
        from . import lab  # pandas and numpy load on first use, so `import labkit` (and the CLI) start fast

        return getattr(lab, name)
    raise AttributeError(f"module 'labkit' has no attribute {name!r}")
