"""`cilium` / `cilium-dbg` and `hubble` in a node shell (`labkit shell NODE`): the agent's
CLI of that node, answered through the lab's backend contract.

    python -m labkit.cli.agent cilium status | version | endpoint list | identity list |
                                      service list | bpf ... | monitor [-v] [-j] ...
    python -m labkit.cli.agent hubble observe [--last N] [-f] [-o json] [--pod P] ...

The node is $LABKIT_NODE, the lab $LABKIT_LAB (the shell's wrappers set both). Texts are
Cilium's (labkit/cilium/); errors are cobra's ("Error: unknown command ..."), exit 1.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn

from ..errors import LabError
from .cilium import flusher, lister
from .common import lab_of, print_text
from .monitor import cmd_monitor

CILIUM_COMMANDS = {
    "bpf": "Direct access to local BPF maps",
    "endpoint": "Manage endpoints",
    "identity": "Manage security identities",
    "monitor": "Display BPF program events",
    "service": "Manage services & loadbalancers",
    "status": "Display status of daemon",
    "version": "Print version information",
}
HUBBLE_COMMANDS = {"observe": "Observe flows and events of a Hubble server"}


class CobraParser(argparse.ArgumentParser):
    """argparse with cobra's error text: "Error: ...", "Run '<cmd> --help' for usage.", exit 1."""

    def error(self, message: str) -> NoReturn:
        message = message.replace("unrecognized arguments:", "unknown flag:")
        sys.stderr.write(f"Error: {message}\nRun '{self.prog} --help' for usage.\n")
        sys.exit(1)


def unknown(prog: str, word: str) -> int:
    sys.stderr.write(f'Error: unknown command "{word}" for "{prog}"\nRun \'{prog} --help\' for usage.\n')
    return 1


def usage(prog: str, commands: dict[str, str]) -> int:
    width = max(len(c) for c in commands) + 2
    lines = [
        "CLI for interacting with the local Cilium Agent"
        if prog != "hubble"
        else "Hubble is a utility to observe and inspect recent Cilium routed traffic in a cluster.",
        "",
        "Usage:",
        f"  {prog} [command]",
        "",
        "Available Commands:",
        *(f"  {c.ljust(width)}{h}" for c, h in sorted(commands.items())),
        "",
        f'Use "{prog} [command] --help" for more information about a command.',
        "(labkit: the node's datapath answers; see docs/fidelity.md for what it prints like Cilium 1.17)",
    ]
    print("\n".join(lines))
    return 0


def _node_args(ns: argparse.Namespace) -> argparse.Namespace:
    ns.lab = os.environ.get("LABKIT_LAB")
    ns.backend = os.environ.get("LABKIT_BACKEND")
    ns.node = os.environ.get("LABKIT_NODE")
    if not ns.node:
        raise LabError("run this in a node shell: labkit shell NODE")
    return ns


def _text(what: str) -> Callable[[argparse.Namespace], int]:
    def run(ns: argparse.Namespace) -> int:
        ns = _node_args(ns)
        print_text(lab_of(ns).maps(ns.node).text(what, output=getattr(ns, "output", "text")))
        return 0

    return run


def cilium(prog: str, argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help", "help"):
        return usage(prog, CILIUM_COMMANDS)
    if argv[0] not in CILIUM_COMMANDS:
        return unknown(prog, argv[0])
    p = CobraParser(prog=prog, add_help=True)
    sub = p.add_subparsers(dest="cmd", required=True, parser_class=CobraParser)

    def leaf(parent, name: str, fn: Callable[[argparse.Namespace], int], json: bool = True) -> CobraParser:
        sp: CobraParser = parent.add_parser(name, prog=f"{parent.prog_base} {name}")
        if json:
            sp.add_argument("-o", "--output", choices=("json",), default="text")
        sp.set_defaults(fn=fn)
        return sp

    def group(name: str) -> argparse._SubParsersAction:
        g = sub.add_parser(name, prog=f"{prog} {name}")
        s = g.add_subparsers(dest="sub", required=True, parser_class=CobraParser)
        s.prog_base = f"{prog} {name}"  # type: ignore[attr-defined]
        return s

    sp = sub.add_parser("status", prog=f"{prog} status")
    sp.add_argument("--verbose", action="store_true")
    sp.add_argument("--all-addresses", action="store_true")
    sp.set_defaults(fn=lambda ns: _text("status-verbose" if ns.verbose else "status")(ns))
    sub.add_parser("version", prog=f"{prog} version").set_defaults(fn=_text("version"))
    leaf(group("endpoint"), "list", _text("endpoint-list"))
    leaf(group("identity"), "list", _text("identities"))
    leaf(group("service"), "list", _text("services"))
    bpf = sub.add_parser("bpf", prog=f"{prog} bpf")
    maps = bpf.add_subparsers(dest="map", required=True, parser_class=CobraParser)
    for name, what in (("endpoint", "endpoints"), ("ct", "ct"), ("nat", "nat"), ("lb", "lb"), ("ipcache", "ipcache"),
                       ("metrics", "metrics")):  # fmt: skip
        m = maps.add_parser(name, prog=f"{prog} bpf {name}")
        cmds = m.add_subparsers(dest="op", required=True, parser_class=CobraParser)
        ls = cmds.add_parser("list", prog=f"{prog} bpf {name} list")
        ls.add_argument("-o", "--output", choices=("json",), default="text")
        if name == "ct":
            ls.add_argument("scope", choices=("global",))
            ls.add_argument("-d", "--time-diff", action="store_true")
        ls.set_defaults(fn=lambda ns, w=what: lister(w)(_node_args(ns)))
        if name in ("ct", "nat"):
            fl = cmds.add_parser("flush", prog=f"{prog} bpf {name} flush")
            if name == "ct":
                fl.add_argument("scope", choices=("global",))
            fl.set_defaults(fn=lambda ns, w=name: flusher(w)(_node_args(ns)))
    mon = sub.add_parser("monitor", prog=f"{prog} monitor")
    mon.add_argument("--from", dest="from_", type=int, action="store")
    mon.add_argument("--to", type=int)
    mon.add_argument("--related-to", type=int)
    mon.add_argument("-j", "--json", action="store_true")
    mon.add_argument("-v", "--verbose", dest="verbose_monitor", action="count", default=0)
    mon.add_argument("--last", type=float, default=None, help="labkit: the events of the last SECONDS, then exit")
    mon.add_argument("--seconds", type=float, default=None, help="labkit: stop after SECONDS")
    mon.set_defaults(fn=lambda ns: cmd_monitor(_node_args(ns)))
    ns = p.parse_args(argv)
    return int(ns.fn(ns) or 0)


def hubble(prog: str, argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help", "help"):
        return usage(prog, HUBBLE_COMMANDS)
    if argv[0] not in HUBBLE_COMMANDS:
        return unknown(prog, argv[0])
    p = CobraParser(prog=f"{prog} observe")
    p.add_argument("--last", type=int, default=None)
    p.add_argument("--all", action="store_true")
    p.add_argument("--since", default=None, help="e.g. 30s, 5m")
    p.add_argument("-f", "--follow", action="store_true")
    p.add_argument("-o", "--output", choices=("compact", "json", "jsonpb"), default="compact")
    p.add_argument("--print-node-name", action="store_true")
    for flag in ("--pod", "--from-pod", "--to-pod", "--ip", "--from-ip", "--to-ip", "--port", "--to-port",
                 "--from-port", "--verdict", "--protocol", "--type", "--node-name"):  # fmt: skip
        p.add_argument(flag, action="append", default=[])
    p.add_argument("-n", "--namespace", action="append", default=[])
    ns = p.parse_args(argv[1:])
    ns = _node_args(ns)
    from .observe import observe  # the filters, kept next to the labkit observe command

    return observe(lab_of(ns), ns)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    tool = args.pop(0) if args else "cilium"
    try:
        return hubble(tool, args) if tool == "hubble" else cilium(tool, args)
    except LabError as e:
        sys.stderr.write(f"Error: {e}\n")
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
