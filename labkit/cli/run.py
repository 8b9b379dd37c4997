"""`labkit exec | shell | capture`: run things in a node or pod, and watch their packets."""

from __future__ import annotations

import argparse
import os
import sys

from ..errors import ExitStatus, LabError
from .common import AddCommand, Args, lab_of


def cmd_exec(args: Args) -> int:
    argv = list(args.command)
    if not argv:
        raise LabError(f"no command; write it after --, e.g. labkit exec {args.target} -- ip addr")
    proc = lab_of(args).backend.popen(args.target, argv)
    try:
        return proc.wait()
    except KeyboardInterrupt:
        proc.terminate()
        return ExitStatus.INTERRUPTED


def cmd_shell(args: Args) -> int:
    lab = lab_of(args)
    env = dict(os.environ, PS1=f"({lab.name}:{args.target}) \\w# ")
    env.update(lab.backend.shell_env(args.target))  # `cilium ...` / `hubble ...` in node shells
    proc = lab.backend.popen(args.target, ["bash", "--norc", "-i"], env=env)
    return proc.wait()


def cmd_capture(args: Args) -> int:
    """Capture on the points while CMD runs (in --in TARGET, default the first pod point)."""
    lab = lab_of(args)
    command = list(args.command)
    where = args.inside
    if command and not where:
        pods = set(lab.pods.name)
        where = next((p.split(":")[0] for p in args.point if p.split(":")[0] in pods), None)
        if not where:
            raise LabError("say where the command runs: --in POD (or capture on a pod:iface point)")
    if not command and not (args.seconds or args.count):
        raise LabError("give a command after -- or a bound (--seconds S or --count N)")
    cap = lab.capture(args.point, count=args.count, seconds=args.seconds or (None if command else 10))
    code = 0
    with cap:
        if command:
            r = lab.backend.run(where, command, timeout=args.seconds or 60)
            code = r.returncode
            sys.stderr.write(r.stderr)
            if args.show_output:
                sys.stdout.write(r.stdout)
            cap.wait(0.3)
        else:
            try:
                cap.wait(None)
            except KeyboardInterrupt:
                pass
    for point in [p.point for p in cap.points]:
        lines = cap.lines(point)
        print(f"== {point}: {len(lines)} packets")
        for line in lines:
            print(line)
    if args.write:
        for path in cap.save(args.write):
            print(f"wrote {path}", file=sys.stderr)
    return code


def register(add: AddCommand, common: argparse.ArgumentParser, out: argparse.ArgumentParser) -> None:
    sp = add("exec", cmd_exec, "run a command in a node or pod; its exit code passes through")
    sp.add_argument("target", metavar="TARGET", help="node or pod name (namespace/pod if ambiguous)")
    sp.set_defaults(command=[])
    sp = add("shell", cmd_shell, "an interactive shell in a node or pod")
    sp.add_argument("target", metavar="TARGET")
    sp = add("capture", cmd_capture, "capture on interfaces while a command runs; tcpdump-like lines per interface")
    sp.add_argument(
        "--point",
        "-p",
        action="append",
        required=True,
        metavar="P",
        help="NODE:IFACE or POD:IFACE, globs allowed (kind-worker:lxc*); repeat for more",
    )
    sp.add_argument("--count", "-c", type=int, help="stop after N packets (all points together)")
    sp.add_argument("--seconds", "-s", type=float, help="stop after S seconds")
    sp.add_argument("--write", "-w", metavar="DIR", help="also save one pcapng file per point in DIR")
    sp.add_argument("--in", dest="inside", metavar="TARGET", help="pod or node where CMD runs")
    sp.add_argument("--show-output", action="store_true", help="print CMD's own output too")
    sp.set_defaults(command=[])
