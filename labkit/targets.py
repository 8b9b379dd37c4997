"""Resolving names a learner types: ``kind-worker``, ``client-pod``, ``native/client-pod``,
and capture points ``NODE:IFACE`` / ``POD:IFACE`` with shell-style globs.

Both backends resolve with these functions, so a name means the same thing, and a bad
name gets the same one-line error, whichever backend the lab runs on. A backend supplies
only what it alone knows: its nodes and pods, how to list a namespace's interfaces, and
how to turn a matched interface into a :class:`~labkit.backend.CapturePoint`.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterable, Sequence

from .backend import CapturePoint, NodeRef, PodRef, TargetRef
from .errors import LabError


def resolve(target: str, nodes: Sequence[str], pods: Iterable[PodRef], lab: str) -> TargetRef:
    """A node or pod name (or namespace/pod) -> its reference; LabError naming what exists."""
    if not isinstance(target, str) or not target:
        raise LabError(f"give a node or pod name, e.g. kind-worker or client-pod (got {target!r})")
    if target in nodes:
        return NodeRef(target)
    pods = list(pods)
    ns, _, name = target.rpartition("/")
    hits = [p for p in pods if p.name == name and (not ns or p.namespace == ns)]
    if len(hits) == 1:
        return hits[0]
    if len(hits) > 1:
        spaces = ", ".join(sorted(p.namespace for p in hits))
        raise LabError(f"pod name {name!r} is in several namespaces ({spaces}); write NAMESPACE/{name}")
    known = [*nodes, *(p.name for p in pods)]
    raise LabError(f"unknown node or pod {target!r} in lab {lab!r}; known: {', '.join(known) or 'none'}")


def command_argv(argv: object) -> list[str]:
    """A command as a list of words (never a shell string), each free of NUL bytes."""
    if isinstance(argv, str | bytes) or not isinstance(argv, Sequence):
        raise LabError("give the command as a list of words, e.g. ['curl', '-s', 'http://webpod']")
    words = [str(a) for a in argv]
    if not words:
        raise LabError("no command given; e.g. labkit exec client-pod -- curl -s http://webpod")
    if any("\0" in w for w in words):
        raise LabError("a word of the command holds a NUL byte; commands cannot carry one")
    return words


def split_point(pattern: str) -> tuple[str, str]:
    """``"kind-worker:lxc*"`` -> ``("kind-worker", "lxc*")``."""
    target, sep, ifglob = str(pattern).partition(":")
    if not sep or not target or not ifglob:
        raise LabError(
            f"capture point {pattern!r}: write NODE:IFACE or POD:IFACE, e.g. kind-worker:eth0 or 'kind-worker:lxc*'"
        )
    return target, ifglob


def is_glob(text: str) -> bool:
    return any(c in text for c in "*?[")


def match_points(
    patterns: Sequence[str],
    resolve_target: Callable[[str], TargetRef],
    interfaces: Callable[[TargetRef, str], list[str]],
    point: Callable[[TargetRef, str, str], CapturePoint],
) -> list[CapturePoint]:
    """Capture points for ``patterns``.

    ``interfaces(ref, glob)``: the interface names of ``ref``'s namespace worth matching
    against ``glob``; ``point(ref, target, iface)``: the CapturePoint of one match (the
    backend fills how to reach it)."""
    if isinstance(patterns, str):
        patterns = [patterns]
    out: list[CapturePoint] = []
    for pattern in patterns:
        target, ifglob = split_point(pattern)
        ref = resolve_target(target)
        names = interfaces(ref, ifglob)
        matched = sorted(n for n in names if fnmatch.fnmatchcase(n, ifglob))
        if not matched:
            raise LabError(
                f"capture point {pattern!r}: no interface matches {ifglob!r} in {target} "
                f"(interfaces: {', '.join(sorted(names)) or 'none'})"
            )
        out += [point(ref, target, iface) for iface in matched]
    return out
