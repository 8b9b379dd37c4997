"""What the notebooks call. Notebooks stay thin: every cell is story plus one or two calls
into labkit, from this package:

- ``scenarios``: ``start`` (the lab in the state a lesson needs), ``companion`` labs;
- one module per lesson, the blog's experiments as dataclasses of tables and the claims the
  lesson's text makes about them: ``install``, ``same_node``, ``service``, ``cross_node``,
  ``masquerade``;
- ``cast``: the pods of the blog's story, by role, and capture points by role;
- ``checks``: ``check`` a learner's prediction, ``reveal`` an answer only after it;
- ``claims``: what the text claims, checked against the run (``recap`` ends a lesson);
- ``blogmap``: the blog's names mapped to the lab's, its command lines run as written;
- ``display``: figures that render in JupyterLab and in offline HTML;
- ``values``: the helm values table.
"""

from __future__ import annotations

from . import cross_node, install, masquerade, same_node, service
from .blogmap import Recorded, blog, blog_names, curl, terminal, translate
from .cast import Cast, cast
from .checks import check, reveal
from .claims import Claim, ClaimNotShown, claim, recap
from .display import setup_plotting
from .scenarios import (
    KernelPath,
    backend_spread,
    companion,
    external_target,
    host_nat_entries,
    kernel_path,
    start,
    topology,
)
from .values import VALUE_MEANINGS, values_table

__all__ = [
    "Cast",
    "KernelPath",
    "Recorded",
    "cross_node",
    "curl",
    "install",
    "masquerade",
    "same_node",
    "service",
    "Claim",
    "ClaimNotShown",
    "blog",
    "blog_names",
    "claim",
    "recap",
    "reveal",
    "terminal",
    "translate",
    "VALUE_MEANINGS",
    "backend_spread",
    "cast",
    "check",
    "companion",
    "external_target",
    "host_nat_entries",
    "kernel_path",
    "setup_plotting",
    "start",
    "topology",
    "values_table",
]
