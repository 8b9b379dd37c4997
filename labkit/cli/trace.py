"""`labkit trace`: follow packets through the kernel while a command runs (the blog's pwru step).

    labkit trace -p client-pod:eth0 --filter 'tcp and port 80' -- curl -s http://webpod

prints one line per kernel event of each packet, as pwru does: time, packet and skb, CPU,
process, the lab's node or pod, interface, length, tuple, the event and what it tells
(the datapath's program and verdict at a tc hook, a route, a neighbour, a free).
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..errors import LabError
from .common import AddCommand, Args, lab_of

if TYPE_CHECKING:
    import pandas as pd

COLUMNS = ["time", "packet", "skb", "cpu", "process", "netns", "interface", "length", "tuple", "event", "info"]


def info(row: Any) -> str:
    """What an event tells besides where it happened: hook and verdict, free, reason, detail."""
    parts = [row.hook + (f": {row.verdict}" if row.verdict else "")] if row.hook else []
    parts += [row.free] if row.free else []
    parts += [f"reason {row.drop_reason}"] if row.drop_reason else []
    parts += [row.detail] if row.detail else []
    return "; ".join(parts)


def text(df: pd.DataFrame) -> str:
    """The trace as pwru-like lines (time in ms from the first event)."""
    import pandas as pd  # heavy: only once there is a trace to print (`labkit --help` stays fast)

    from ..render import text_table

    if df.empty:
        return "no packet matched; check --filter and -p (labkit trace --help)"
    view = pd.DataFrame(
        {
            "time": [f"{(t - df.time.iloc[0]) * 1e3:.3f}" for t in df.time],
            "packet": df.packet,
            "skb": df.skb,
            "cpu": df.cpu,
            "process": df.process,
            "netns": df.netns,
            "interface": df.interface,
            "length": df.length,
            "tuple": [f"{t} {f}".strip() for t, f in zip(df.tuple, df.tcp_flags)],
            "event": df.event,
            "info": [info(r) for r in df.itertuples()],
        }
    )
    return text_table(view.rename(columns={"time": "time(ms)"}), ["time(ms)", *COLUMNS[1:]], gap=2)


def _positive(args: Args) -> None:
    if args.seconds is not None and (not math.isfinite(args.seconds) or args.seconds <= 0):
        raise LabError(f"--seconds must be a number of seconds > 0, got {args.seconds}")


def cmd_trace(args: Args) -> int:
    _positive(args)
    lab = lab_of(args)
    command = list(args.command)
    where = args.inside
    if command and not where:
        pods = set(lab.pods.name) if args.point else set()
        where = next((p.split(":")[0] for p in args.point if p.split(":")[0] in pods), None)
        if not where:
            raise LabError("say where the command runs: --in POD (or trace from a pod:iface point, -p)")
    result: dict[str, Any] = {}
    during: Callable[[], object] | None = None
    if command:
        target = lab.target(where)  # a bad name fails here, before anything is loaded
        limit = args.seconds or 10.0

        def run_command() -> None:
            result["run"] = lab.backend.run(target._where, command, timeout=limit)

        during = run_command

    df = lab.backend.trace(
        args.point, filter=args.filter, duration=args.seconds, during=during, max_events=args.max_events
    )
    run = result.get("run")
    if run is not None:
        sys.stderr.write(run.stderr)
        if args.show_output:
            sys.stdout.write(run.stdout)
    if args.output == "json":
        print(df.to_json(orient="records", indent=2))
    else:
        print(text(df))
    return run.returncode if run is not None else 0


def register(add: AddCommand, common: argparse.ArgumentParser, out: argparse.ArgumentParser) -> None:
    sp = add(
        "trace",
        cmd_trace,
        "follow packets through the kernel while a command runs (like pwru): one line per event",
        parents=(common, out),
    )
    sp.add_argument(
        "--point",
        "-p",
        action="append",
        default=[],
        metavar="P",
        help="pick packets up only here (NODE:IFACE or POD:IFACE, globs; repeat), then follow their flows "
        "everywhere; default: anywhere in the lab",
    )
    sp.add_argument(
        "--filter", "-f", default="", help="pcap-filter subset, e.g. 'tcp and port 80', 'host 10.244.1.71 and not arp'"
    )
    sp.add_argument("--in", dest="inside", metavar="TARGET", help="pod or node where CMD runs (default: the -p pod)")
    sp.add_argument(
        "--seconds", "-s", type=float, default=None, help="bound (default 10); without CMD: trace this long"
    )
    sp.add_argument("--max-events", type=int, default=None, help="stop after N events (default 20000)")
    sp.add_argument("--show-output", action="store_true", help="print CMD's own output too")
    sp.set_defaults(command=[])
