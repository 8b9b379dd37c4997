"""`labkit monitor` and `labkit observe`: the datapath's events as `cilium monitor` and
`hubble observe` print them, streamed through the backend contract."""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Iterator

from ..errors import ExitStatus, LabError
from .common import AddCommand, Args, lab_of


def _node(args: Args) -> str | None:
    return args.node or os.environ.get("LABKIT_NODE") or None


def _finite(args: Args, *names: str) -> None:
    for name in names:
        v = getattr(args, name, None)
        if v is not None and (not math.isfinite(v) or v < 0):
            raise LabError(f"--{name.replace('_', '-')} must be a number of seconds >= 0, got {v}")


def _print_all(lines: Iterator[str]) -> None:
    """Print as they come; when this returns or is interrupted, the backend's generator is
    dropped and closes its readers."""
    for line in lines:
        print(line, flush=True)


def cmd_monitor(args: Args) -> int:
    _finite(args, "seconds", "last")
    lines = lab_of(args).backend.monitor_lines(
        _node(args),
        from_=args.from_,
        to=args.to,
        related_to=args.related_to,
        json=args.json,
        seconds=args.last,
        duration=args.seconds,
        verbose=bool(args.verbose_monitor),
    )
    try:
        _print_all(lines)
    except KeyboardInterrupt:
        print("\nReceived an interrupt, disconnecting from monitor...", file=sys.stderr)
    return ExitStatus.SUCCESS


def cmd_observe(args: Args) -> int:
    _finite(args, "since", "seconds")
    lines = lab_of(args).backend.observe_lines(
        _node(args),
        last=None if args.all else args.last,
        seconds=args.since,
        follow=args.follow,
        duration=args.seconds,
        output="json" if args.output == "json" else "compact",
    )
    try:
        _print_all(lines)
    except KeyboardInterrupt:
        pass
    return ExitStatus.SUCCESS


def register(
    add: AddCommand, common: argparse.ArgumentParser, out: argparse.ArgumentParser, node: argparse.ArgumentParser
) -> None:
    sp = add(
        "monitor",
        cmd_monitor,
        "datapath trace and drop events, as `cilium monitor` prints them",
        parents=(common, node),
    )
    sp.add_argument("--from", dest="from_", type=int, metavar="ID", help="only events from this endpoint id")
    sp.add_argument("--to", type=int, metavar="ID", help="only events to this endpoint id")
    sp.add_argument("--related-to", type=int, metavar="ID", help="only events from or to this endpoint id")
    sp.add_argument("-j", "--json", action="store_true", help="one JSON object per event (shadows -v)")
    sp.add_argument(
        "-v",
        "--verbose",
        dest="verbose_monitor",
        action="count",
        default=0,
        help="also the socket-LB translations (trace-sock: [pre-xlate-fwd] ...), as cilium monitor -v",
    )
    sp.add_argument("--seconds", type=float, default=None, help="stop after this many seconds (default: Ctrl-C)")
    sp.add_argument(
        "--last",
        type=float,
        default=None,
        metavar="SECONDS",
        help="print the events of the last SECONDS and exit, instead of following",
    )

    sp = add("observe", cmd_observe, "Hubble-like flows (`hubble observe`)", parents=(common, out, node))
    sp.add_argument("--last", type=int, default=20, help="how many recent flows (default 20)")
    sp.add_argument("--all", action="store_true", help="every recorded flow")
    sp.add_argument("--since", type=float, default=None, metavar="SECONDS", help="only flows of the last SECONDS")
    sp.add_argument("-f", "--follow", action="store_true", help="keep printing new flows")
    sp.add_argument("--seconds", type=float, default=None, help="with --follow: stop after this many seconds")
