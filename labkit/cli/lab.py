"""`labkit up | down | apply | status | doctor`: the lab's lifecycle and what it holds."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import TYPE_CHECKING, Any

from ..doctor import format_checks
from ..errors import ExitStatus, LabError
from ..spec import parse_set
from .common import AddCommand, Args, lab_flag, lab_of, print_table

if TYPE_CHECKING:
    import pandas as pd

    from ..backend import Backend
    from ..lab import Lab


def backend_for(lab: str | None, backend: str | None) -> Backend:
    from ..lab import backend_for as make  # heavy (pandas, both backends): loaded when a command runs

    return make(lab, backend)


def cmd_up(args: Args) -> int:
    lab = lab_of(args)
    print(lab.up(datapath=args.datapath, options=parse_set(args.set or [])))
    if not args.no_hint and not lab.backend.capabilities.up_applies_manifests and lab.pods.empty:
        print(f"next: labkit apply cluster/manifests{lab_flag(args)}")
    return ExitStatus.SUCCESS


def checkout() -> str:
    from ..lab import checkout as here  # heavy: loaded when a command runs

    return here()


def age(created: Any, now: float | None = None) -> str:
    """'3m', '2h05m', '4d03h' since ``created`` (a UTC timestamp); '' when unknown."""
    import pandas as pd  # heavy: loaded when a command runs

    if created is None or pd.isna(created):
        return ""
    s = int((now if now is not None else time.time()) - pd.Timestamp(created).timestamp())
    if s < 3600:
        return f"{max(s, 0) // 60}m"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"


def made_in(path: str, here: str) -> str:
    return "this checkout" if path == here else (path or "unknown")


def cmd_list(args: Args) -> int:
    labs = backend_for(None, args.backend).labs()
    if args.output == "json":
        print(labs.to_json(orient="records", date_format="iso", indent=2))
        return ExitStatus.SUCCESS
    if labs.empty:
        print("no labs; build one with: labkit up")
        return ExitStatus.SUCCESS
    here = checkout()
    shown = labs.assign(age=[age(c) for c in labs.created], made_in=[made_in(c, here) for c in labs.checkout])
    print_table(shown, ["name", "status", "datapath", "options", "age", "companion_of", "companions", "made_in"])
    return ExitStatus.SUCCESS


def split_all(labs: pd.DataFrame, here: str) -> tuple[list[str], list[str]]:
    """(labs built from checkout ``here``, labs built elsewhere or by an unknown checkout)."""
    mine = labs.checkout == here
    return list(labs.name[mine]), list(labs.name[~mine])


def _confirm(question: str) -> bool:
    if not sys.stdin.isatty():
        return False
    print(f"{question} [y/N] ", end="", flush=True)
    return sys.stdin.readline().strip().lower() in ("y", "yes")


def cmd_down(args: Args) -> int:
    if not args.all:
        print(lab_of(args).down())
        return ExitStatus.SUCCESS
    labs = backend_for(None, args.backend).labs()
    if labs.empty:
        print("no labs are up")
        return ExitStatus.SUCCESS
    mine, others = split_all(labs, checkout())
    if others and not args.yes:
        question = f"{len(others)} labs were not built from this checkout ({', '.join(others)}): remove them too?"
        if not _confirm(question):
            print(f"left alone (not built from this checkout): {', '.join(others)}; add --yes to remove them too")
            others = []
    for name in mine + others:
        print(backend_for(name, args.backend).down())
    return ExitStatus.SUCCESS


def cmd_apply(args: Args) -> int:
    for line in lab_of(args).apply(*args.paths):
        print(line)
    return ExitStatus.SUCCESS


def cmd_status(args: Args) -> int:
    lab = lab_of(args)
    if not lab.is_up:
        raise LabError(f"lab {lab.name!r} is not up; run: labkit up{lab_flag(args)}")
    nodes, pods, services = lab.nodes, lab.pods, lab.services
    if args.output == "json":
        doc = {
            "lab": lab.name,
            "backend": lab.backend.name,
            "nodes": json.loads(nodes.to_json(orient="records")),
            "pods": json.loads(pods.to_json(orient="records")),
            "services": json.loads(services.to_json(orient="records")),
        }
        print(json.dumps(doc, indent=2))
        return _say_problems(lab)
    print(f"lab {lab.name} ({lab.backend.name}): {len(nodes)} nodes, {len(pods)} pods, {len(services)} services\n")
    print_table(nodes)
    print()
    print_table(pods, ["namespace", "name", "node", "ip", "lxc", "lxc_ifindex", "pod_mac", "lxc_mac", "app"])
    if len(services):
        print()
        print_table(services, ["namespace", "name", "type", "cluster_ip", "port", "protocol", "backends"])
    return _say_problems(lab)


def _say_problems(lab: Lab) -> int:
    """A daemon or pod that stopped: one warning line each (what to do), exit 1."""
    problems = lab.backend.problems()
    sys.stdout.flush()
    for line in problems:
        print(f"labkit: warning: {line}", file=sys.stderr)
    return ExitStatus.FAILURE if problems else ExitStatus.SUCCESS


def cmd_doctor(args: Args) -> int:
    checks = backend_for(args.lab, args.backend).doctor()
    if args.output == "json":
        print(json.dumps([c.__dict__ for c in checks], indent=2))
    else:
        print(format_checks(checks))
    return ExitStatus.SUCCESS if all(c.ok for c in checks) else ExitStatus.FAILURE


def register(add: AddCommand, common: argparse.ArgumentParser, out: argparse.ArgumentParser) -> None:
    sp = add("up", cmd_up, "build the lab's nodes from cluster/ (safe to run again)")
    sp.add_argument(
        "--datapath",
        default=None,
        help="ebpf: labkit's Cilium-like datapath; kernel: plain kernel routing (the baseline)",
    )
    sp.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="override a helm value of cluster/cilium-values.yaml, e.g. socketLB.enabled=false",
    )
    sp.add_argument("--no-hint", action="store_true", help="do not print the next command to run")
    sp = add("down", cmd_down, "remove the lab, the labs a lesson made for it, and everything they created")
    sp.add_argument(
        "--all", action="store_true", help="remove every lab built from this checkout; asks before any other"
    )
    sp.add_argument("--yes", action="store_true", help="with --all: also remove labs built elsewhere, without asking")
    what = "every lab on this machine: datapath, settings, age, companions, who built it"
    add("list", cmd_list, what, (common, out))
    sp = add("apply", cmd_apply, "create the pods and services of manifest files or folders")
    sp.add_argument("paths", nargs="+", metavar="PATH")
    add("status", cmd_status, "nodes, pods (with lxc, ifindex, MACs) and services", (common, out))
    add("doctor", cmd_doctor, "check this machine for what the backend needs, and say how to fix it", (common, out))
