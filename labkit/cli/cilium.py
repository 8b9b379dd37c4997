"""`labkit bpf ...` and `labkit service list`: the blog's `cilium bpf ...` / `cilium service
list`, printing what Cilium prints; and `labkit bpf source`, the embedded datapath's program
text as compiled. The backend answers through its MapsReader's
``text()``: the embedded one formats its own maps (labkit/cilium/text.py), the kind one
runs `cilium-dbg` in the node's agent pod.

All take ``--node NODE`` (default: $LABKIT_NODE, set in `labkit shell NODE`, where a
``cilium`` / ``hubble`` wrapper on PATH runs these same commands so the blog's lines work
as written) and ``--lab``; lists take ``-o json``. Without a node, as Cilium has one agent
per node, they answer for every node in turn, each under a ``== NODE`` header (JSON: one
object keyed by node).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from ..embedded.ebpf import build, source
from ..errors import ExitStatus, LabError
from .common import AddCommand, Args, lab_of, print_text

if TYPE_CHECKING:
    from ..backend import MapsReader


def nodes_of(args: Args) -> list[str]:
    """The node given (--node, or $LABKIT_NODE in a node shell), else every node of the lab."""
    node = args.node or os.environ.get("LABKIT_NODE")
    if node:
        return [str(node)]
    return [str(n) for n in lab_of(args).nodes.name]  # a lab that is not up says so here


def maps_of(args: Args) -> list[MapsReader]:
    lab = lab_of(args)
    return [lab.maps(n) for n in nodes_of(args)]


def lister(what: str) -> Callable[[Args], int]:
    """`cilium bpf <what> list` (or `cilium service list`), on one node or on each in turn."""

    def run(args: Args) -> int:
        readers = maps_of(args)
        texts = [
            (m.node, m.text(what, output=args.output, time_diff=getattr(args, "time_diff", False))) for m in readers
        ]
        if args.output == "json":
            if len(texts) == 1:
                print_text(texts[0][1])
            else:
                print(json.dumps({node: json.loads(text or "null") for node, text in texts}, indent=2))
            return ExitStatus.SUCCESS
        for node, text in texts:
            if len(texts) > 1:
                print(f"== {node}")
            if text:
                print_text(text)
            elif len(texts) > 1:
                print("No entries found.")
            else:
                print("No entries found.", file=sys.stderr)
        return ExitStatus.SUCCESS

    return run


def flusher(what: str) -> Callable[[Args], int]:
    def run(args: Args) -> int:
        readers = maps_of(args)
        for m in readers:
            if len(readers) > 1:
                print(f"== {m.node}")
            for path, n in m.flush(what).items():
                print(f"Flushed {n} entries from {path}")
        return ExitStatus.SUCCESS

    return run


def print_source(args: Args) -> int:
    """`labkit bpf source FILE`: the text bcc compiles for bpf/FILE (as bcc tools' --ebpf
    prints theirs): headers inlined once each, #line markers naming the real file:line."""
    print_text(source.program_text(args.program))
    return ExitStatus.SUCCESS


def need_sub(args: Args) -> int:
    raise LabError(f"`labkit {args.cmd}` needs a subcommand; see labkit {args.cmd} --help")


def register(
    add: AddCommand, common: argparse.ArgumentParser, out: argparse.ArgumentParser, node: argparse.ArgumentParser
) -> None:
    def leaf(
        parent_sub: Any, name: str, fn: Callable[[Args], int], help: str, parents: Sequence[argparse.ArgumentParser]
    ) -> argparse.ArgumentParser:
        sp: argparse.ArgumentParser = parent_sub.add_parser(name, help=help, description=help, parents=list(parents))
        sp.set_defaults(fn=fn)
        return sp

    lists = (common, out, node)
    bpf = add("bpf", need_sub, "read the eBPF datapath's maps, as `cilium bpf ...` prints them", parents=())
    maps = bpf.add_subparsers(dest="bpf_map", required=True, metavar="MAP")
    ep = maps.add_parser("endpoint", help="cilium_lxc: local endpoints").add_subparsers(required=True, metavar="CMD")
    leaf(ep, "list", lister("endpoints"), "list local endpoints", lists)
    ct = maps.add_parser("ct", help="connection tracking").add_subparsers(required=True, metavar="CMD")
    sp = leaf(ct, "list", lister("ct"), "list CT entries", lists)
    sp.add_argument("scope", choices=("global",), help="global (the only CT maps of the lab)")
    sp.add_argument("-d", "--time-diff", action="store_true", help="print remaining seconds")
    sp = leaf(ct, "flush", flusher("ct"), "delete all CT entries", (common, node))
    sp.add_argument("scope", choices=("global",))
    nat = maps.add_parser("nat", help="cilium_snat_v4_external").add_subparsers(required=True, metavar="CMD")
    leaf(nat, "list", lister("nat"), "list NAT entries", lists)
    leaf(nat, "flush", flusher("nat"), "delete all NAT entries", (common, node))
    lb = maps.add_parser("lb", help="service load balancer maps").add_subparsers(required=True, metavar="CMD")
    leaf(lb, "list", lister("lb"), "list services and backend slots", lists)
    ipc = maps.add_parser("ipcache", help="cilium_ipcache").add_subparsers(required=True, metavar="CMD")
    leaf(ipc, "list", lister("ipcache"), "list ipcache prefixes", lists)
    met = maps.add_parser("metrics", help="cilium_metrics").add_subparsers(required=True, metavar="CMD")
    leaf(met, "list", lister("metrics"), "forwarded/dropped packets by reason", lists)
    what = "print an eBPF program's source as it is compiled (headers inlined, with #line markers)"
    src = maps.add_parser("source", help=what, description=what)
    src.add_argument("program", choices=tuple(build.PROGRAMS), help="the attach point's file (bpf/README.md)")
    src.set_defaults(fn=print_source)

    svc = add("service", need_sub, "services, as `cilium service list` prints them", parents=())
    leaf(svc.add_subparsers(required=True, metavar="CMD"), "list", lister("services"), "list services", lists)
