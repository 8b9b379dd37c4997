"""The ``labkit`` command.

Exit codes: 0 success, 1 a failed operation, 2 bad usage or bad input; errors are one line
on stderr saying what was wrong and what to do. ``-o json`` wherever output is a table.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Callable, Sequence

from .errors import LabError

EXAMPLES = """\
examples:
  labkit up && labkit apply cluster/manifests
  labkit status
  labkit exec client-pod -- curl -s http://webpod
  labkit exec kind-worker -- ip route
  labkit shell client-pod
  labkit down --all
"""


def _lab(args):
    from .lab import connect
    return connect(getattr(args, "lab", None), getattr(args, "backend", None))


def _print_table(df, columns: Sequence[str] | None = None, out=None) -> None:
    from .render import text_table
    print(text_table(df, columns), file=out or sys.stdout)


# ---------------------------------------------------------------- commands


def cmd_up(args) -> int:
    from .spec import parse_set
    lab = _lab(args)
    if lab.backend.name == "kind":
        if args.datapath or args.set:
            raise LabError("--datapath and --set are for the embedded backend; the kind backend installs "
                           "Cilium with cluster/cilium-values.yaml")
        print(lab.up())          # kind bring-up applies cluster/manifests itself
        return 0
    print(lab.up(datapath=args.datapath, options=parse_set(args.set or [])))
    if not args.no_hint:
        print(f"next: labkit apply cluster/manifests{_lab_flag(args)}")
    return 0


def cmd_down(args) -> int:
    if args.all and args.backend != "kind":
        from .embedded.backend import EmbeddedBackend
        from .embedded.names import existing_labs
        labs = existing_labs()
        for name in labs:
            print(EmbeddedBackend(name).down())
        if not labs:
            print("no labs are up")
        return 0
    print(_lab(args).down())
    return 0


def cmd_apply(args) -> int:
    for line in _lab(args).apply(*args.paths):
        print(line)
    return 0


def cmd_status(args) -> int:
    lab = _lab(args)
    if not lab.is_up:
        raise LabError(f"lab {lab.name!r} is not up; run: labkit up{_lab_flag(args)}")
    nodes, pods, services = lab.nodes, lab.pods, lab.services
    if args.output == "json":
        doc = {"lab": lab.name, "backend": lab.backend.name,
               "nodes": json.loads(nodes.to_json(orient="records")),
               "pods": json.loads(pods.to_json(orient="records")),
               "services": json.loads(services.to_json(orient="records"))}
        print(json.dumps(doc, indent=2))
        return 0
    print(f"lab {lab.name} ({lab.backend.name}): {len(nodes)} nodes, {len(pods)} pods, {len(services)} services\n")
    _print_table(nodes)
    print()
    _print_table(pods, ["namespace", "name", "node", "ip", "lxc", "lxc_ifindex", "pod_mac", "lxc_mac", "app"])
    if len(services):
        print()
        _print_table(services, ["namespace", "name", "type", "cluster_ip", "port", "protocol", "backends"])
    return 0


def cmd_exec(args) -> int:
    argv = list(args.command)
    if not argv:
        raise LabError(f"no command; write it after --, e.g. labkit exec {args.target} -- ip addr")
    lab = _lab(args)
    proc = lab.backend.popen(args.target, argv)
    try:
        return proc.wait()
    except KeyboardInterrupt:
        proc.terminate()
        return 130


def cmd_shell(args) -> int:
    lab = _lab(args)
    env = dict(os.environ, PS1=f"({lab.name}:{args.target}) \\w# ")
    from .cli_bpf import node_shell_env
    env.update(node_shell_env(lab, args.target))  # `cilium ...` / `hubble ...` in node shells
    proc = lab.backend.popen(args.target, ["bash", "--norc", "-i"], env=env)
    return proc.wait()


def cmd_capture(args) -> int:
    """Capture on the points while CMD runs (in --in TARGET, default the first pod point)."""
    lab = _lab(args)
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


def cmd_export(args) -> int:
    from .export import export
    pages = export(args.out, lab=args.lab, backend=args.backend, only=args.only)
    for page in pages:
        print(page)
    return 0


def cmd_doctor(args) -> int:
    if args.backend == "kind":
        from .doctor import Check
        from .live import doctor
        checks = [Check(name, ok, "ok" if ok else "missing or not ready", fix) for name, ok, fix in doctor()]
    else:
        from .doctor import run_checks
        checks = run_checks()
    if args.output == "json":
        print(json.dumps([c.__dict__ for c in checks], indent=2))
    else:
        for c in checks:
            print(f"{'ok ' if c.ok else 'FAIL'}  {c.name}: {c.detail}" + ("" if c.ok else f"\n      fix: {c.fix}"))
    return 0 if all(c.ok for c in checks) else 1


def _lab_flag(args) -> str:
    lab = getattr(args, "lab", None)
    return f" --lab {lab}" if lab and lab != "default" else ""


# ---------------------------------------------------------------- parser


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (and the help says the rest)."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message}; see {self.prog} --help\n")


def build_parser() -> argparse.ArgumentParser:
    common = Parser(add_help=False)
    common.add_argument("--lab", default=os.environ.get("LABKIT_LAB"), help="lab name (default: default)")
    common.add_argument("--backend", choices=("embedded", "kind"), default=os.environ.get("LABKIT_BACKEND"),
                        help="embedded (default) or kind")
    out = Parser(add_help=False)
    out.add_argument("-o", "--output", choices=("text", "json"), default="text")

    p = Parser(prog="labkit", description="A teaching lab for Cilium networking.",
                                epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True, metavar="COMMAND")

    def add(name: str, fn: Callable, help: str, parents=(common,)) -> argparse.ArgumentParser:
        sp = sub.add_parser(name, help=help, description=help, parents=list(parents))
        sp.set_defaults(fn=fn)
        return sp

    sp = add("up", cmd_up, "build the lab's nodes from cluster/ (safe to run again)")
    sp.add_argument("--datapath", default=None,
                    help="ebpf: labkit's Cilium-like datapath; kernel: plain kernel routing (the baseline)")
    sp.add_argument("--set", action="append", metavar="KEY=VALUE",
                    help="override a helm value of cluster/cilium-values.yaml, e.g. socketLB.enabled=false")
    sp.add_argument("--no-hint", action="store_true", help=argparse.SUPPRESS)
    sp = add("down", cmd_down, "remove the lab and everything it created")
    sp.add_argument("--all", action="store_true", help="remove every lab on this machine")
    sp = add("apply", cmd_apply, "create the pods and services of manifest files or folders")
    sp.add_argument("paths", nargs="+", metavar="PATH")
    add("status", cmd_status, "nodes, pods (with lxc, ifindex, MACs) and services", (common, out))
    sp = add("exec", cmd_exec, "run a command in a node or pod; its exit code passes through")
    sp.add_argument("target", metavar="TARGET", help="node or pod name (namespace/pod if ambiguous)")
    sp.set_defaults(command=[])
    sp = add("shell", cmd_shell, "an interactive shell in a node or pod")
    sp.add_argument("target", metavar="TARGET")
    sp = add("capture", cmd_capture, "capture on interfaces while a command runs; tcpdump-like lines per interface")
    sp.add_argument("--point", "-p", action="append", required=True, metavar="P",
                    help="NODE:IFACE or POD:IFACE, globs allowed (kind-worker:lxc*); repeat for more")
    sp.add_argument("--count", "-c", type=int, help="stop after N packets (all points together)")
    sp.add_argument("--seconds", "-s", type=float, help="stop after S seconds")
    sp.add_argument("--write", "-w", metavar="DIR", help="also save one pcapng file per point in DIR")
    sp.add_argument("--in", dest="inside", metavar="TARGET", help="pod or node where CMD runs")
    sp.add_argument("--show-output", action="store_true", help="print CMD's own output too")
    sp.set_defaults(command=[])
    sp = add("export", cmd_export, "run the labs and write them as HTML tutorials that read offline")
    sp.add_argument("--out", default="out/html", help="folder for the pages (default: out/html)")
    sp.add_argument("--only", action="append", metavar="NAME", help="only notebooks whose file name contains NAME")
    add("doctor", cmd_doctor, "check this machine for what the backend needs, and say how to fix it", (common, out))
    from .cli_bpf import register
    register(add, common, out)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    # Everything after the first "--" is a command to run (exec, capture), never options.
    command: list[str] = []
    if "--" in argv:
        i = argv.index("--")
        argv, command = argv[:i], argv[i + 1:]
    args = parser.parse_args(argv)
    if command:
        if "command" not in vars(args):
            parser.error(f"{args.cmd} takes no command after --")
        args.command = command
    try:
        return int(args.fn(args) or 0)
    except LabError as e:
        print(f"labkit: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
