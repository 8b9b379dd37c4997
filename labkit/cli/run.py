"""`labkit exec | shell | capture`: run things in a node or pod, and watch their packets."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

from ..capture import bounds
from ..errors import ExitStatus, LabError, notice
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


COMMAND_LIMIT = 60.0  # seconds a command may run under `capture` without --seconds


def _write_dir(path: str | None) -> Path | None:
    """-w DIR checked before anything is captured: a directory, or one that can be made."""
    if path is None:
        return None
    d = Path(path)
    if d.exists() and not d.is_dir():
        raise LabError(f"-w {path}: exists and is not a directory; give a directory for the pcapng files")
    if not d.exists() and not d.parent.is_dir():
        raise LabError(f"-w {path}: its parent {d.parent} is not a directory")
    return d


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(2)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def unwrap_exec(command: list[str], where: str | None) -> tuple[list[str], str | None]:
    """`capture ... -- labkit exec POD -- CMD` (a natural first try) means: CMD in POD.

    CMD already runs inside a lab target, where labkit itself cannot start another one."""
    if len(command) >= 3 and os.path.basename(command[0]) == "labkit" and command[1] == "exec":
        target, rest = command[2], command[3:]
        if rest[:1] == ["--"]:
            rest = rest[1:]
        if where and where != target:
            raise LabError(f"--in {where} and `labkit exec {target}` disagree; give one of them")
        if not rest:
            raise LabError(f"no command after labkit exec {target} --")
        return rest, target
    return command, where


def cmd_capture(args: Args) -> int:
    """Capture on the points while CMD runs (in --in TARGET, default the first pod point).

    The capture's bounds stop it (--count, --seconds, --max-bytes); --count and --seconds
    stop the command too, and what was captured is always printed (and saved with -w)."""
    b = bounds.check(args.count, args.seconds, args.max_bytes, args.snaplen)
    out_dir = _write_dir(args.write)
    lab = lab_of(args)
    command, where = unwrap_exec(list(args.command), args.inside)
    if command and not where:
        pods = set(lab.pods.name)
        where = next((p.split(":")[0] for p in args.point if p.split(":")[0] in pods), None)
        if not where:
            raise LabError("say where the command runs: --in POD (or capture on a pod:iface point)")
    if not command and not (b.seconds or b.count):
        raise LabError("give a command after -- or a bound (--seconds S or --count N)")
    cap = lab.capture(
        args.point,
        count=b.count,
        seconds=b.seconds or (None if command else 10),
        max_bytes=b.max_bytes,
        snaplen=b.snaplen,
    )
    code: int = ExitStatus.SUCCESS
    shown = " ".join(command)
    with cap:
        if command and where:
            try:
                proc = lab.backend.popen(
                    where, command, stdin=subprocess.DEVNULL, stdout=None if args.show_output else subprocess.DEVNULL
                )
            except subprocess.SubprocessError as e:
                raise LabError(f"{command[0]} could not start in {where}: {e}", exit_code=1) from None
            limit = time.monotonic() + (b.seconds or COMMAND_LIMIT)
            try:
                while proc.poll() is None:
                    if cap.wait(0.05) and cap.stopped_by in ("count", "seconds"):
                        _stop(proc)
                        how = f"--count {b.count} packets" if cap.stopped_by == "count" else f"--seconds {b.seconds:g}"
                        print(f"labkit: capture ended at {how}; stopped `{shown}`", file=sys.stderr)
                        break
                    if time.monotonic() > limit:
                        _stop(proc)
                        if b.seconds:
                            print(
                                f"labkit: capture ended at --seconds {b.seconds:g}; stopped `{shown}`", file=sys.stderr
                            )
                        else:
                            print(
                                f"labkit: `{shown}` still ran after {COMMAND_LIMIT:g} s; stopped it and kept what "
                                "was captured (give --seconds S to wait longer)",
                                file=sys.stderr,
                            )
                            code = ExitStatus.FAILURE
                        break
                else:
                    code = proc.returncode
                    cap.wait(0.3)
            except KeyboardInterrupt:
                _stop(proc)
                code = ExitStatus.INTERRUPTED
        else:
            try:
                cap.wait(None)
            except KeyboardInterrupt:
                code = ExitStatus.INTERRUPTED
    if cap.stopped_by == "max_bytes":
        notice(
            f"the capture stopped at --max-bytes {b.max_bytes} ({len(cap)} packets kept); "
            "give a larger --max-bytes or a smaller --snaplen to keep more"
        )
    for err in cap.errors:
        notice(err)
    for point in [p.point for p in cap.points]:
        lines = cap.lines(point)
        print(f"== {point}: {len(lines)} packets")
        for line in lines:
            print(line)
    if out_dir is not None:
        for path in cap.save(out_dir):
            print(f"wrote {path}", file=sys.stderr)
    if cap.stopped_by == "error" and code == ExitStatus.SUCCESS:
        code = ExitStatus.FAILURE
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
    sp.add_argument("--count", "-c", type=int, help="stop after N packets (all points together), and the command")
    sp.add_argument("--seconds", "-s", type=float, help="stop after S seconds (the command too); keep what was seen")
    sp.add_argument(
        "--max-bytes",
        type=int,
        default=bounds.DEFAULT_MAX_BYTES,
        metavar="N",
        help=f"keep at most N bytes of packets (default {bounds.DEFAULT_MAX_BYTES >> 20} MiB)",
    )
    sp.add_argument(
        "--snaplen", type=int, default=bounds.DEFAULT_SNAPLEN, metavar="N", help="keep at most N bytes of each frame"
    )
    sp.add_argument("--write", "-w", metavar="DIR", help="also save one pcapng file per point in DIR")
    sp.add_argument("--in", dest="inside", metavar="TARGET", help="pod or node where CMD runs")
    sp.add_argument("--show-output", action="store_true", help="print CMD's own output too")
    sp.set_defaults(command=[])
