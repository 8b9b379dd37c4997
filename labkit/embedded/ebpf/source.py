"""Turning bpf/*.c into one translation unit for bcc.

bcc rewrites map accesses (``cilium_lxc.lookup(&k)``) into helper calls only in the main
file it compiles, not in included headers; a header's map access would become an indirect
call the verifier rejects ("unknown opcode 8d"). So the local ``#include "lib/..."`` lines
are inlined here, each header once, with ``#line`` markers so that ``__LINE__`` (used in
drop notifications and metrics, as in Cilium) and compiler errors still name the real
file and line.

bcc also inserts lines of its own while compiling: an attribute line before every function
(``__attribute__((always_inline))`` or the program's section) and an empty line after a
program's opening brace. Each would push every later ``__LINE__`` of the file down by one,
so a marker follows every function's opening brace too (``{`` alone on its line, the
kernel style bpf/ is written in), and no inserted line reaches a line that reports itself.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from ...errors import ExitStatus, LabError
from ...spec import REPO

# $LABKIT_BPF_DIR: another copy of bpf/ (to develop programs, or to test failure paths)
BPF_DIR = Path(os.environ.get("LABKIT_BPF_DIR") or REPO / "bpf").resolve()
_INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"\s*$')


def inline(path: Path, _seen: set[Path] | None = None) -> str:
    """``path`` with its local includes inlined (once each), #line-annotated."""
    seen = set() if _seen is None else _seen
    path = path.resolve()
    out = [f'#line 1 "{path.relative_to(BPF_DIR)}"']
    for n, line in enumerate(path.read_text().splitlines(), start=1):
        m = _INCLUDE.match(line)
        if m:
            inc = (path.parent / m.group(1)).resolve()
            if not inc.exists():
                inc = (BPF_DIR / m.group(1)).resolve()
            if inc not in seen:
                seen.add(inc)
                out.append(inline(inc, seen).removesuffix("\n"))
            out.append(f'#line {n + 1} "{path.relative_to(BPF_DIR)}"')
            continue
        out.append(line)
        if line.rstrip() == "{":  # a function body: bcc's inserted lines are behind us now
            out.append(f'#line {n + 1} "{path.relative_to(BPF_DIR)}"')
    return "\n".join(out) + "\n"


def program_text(name: str) -> str:
    """The full text of ``bpf/<name>``, ready for ``BPF(text=...)``."""
    if not (BPF_DIR / name).exists():
        raise LabError(
            f"the datapath source {BPF_DIR / name} is missing; run labkit from its checkout "
            f"or set LABKIT_BPF_DIR to the bpf/ folder",
            exit_code=ExitStatus.FAILURE,
        )
    return inline(BPF_DIR / name)
