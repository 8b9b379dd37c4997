"""`labkit bpf ...`, `labkit service list`, `labkit monitor`, `labkit observe`: the Cilium
and Hubble commands of the blog, printing what they print (labkit/datapath/fmt.py).

All take ``--node NODE`` (default: $LABKIT_NODE, set in `labkit shell NODE`, where a
``cilium`` / ``hubble`` wrapper on PATH runs these same commands so the blog's lines
work as written) and ``--lab``; tables take ``-o json``.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Callable

from .errors import LabError

BANNER = "Listening for events on {cpus} CPUs with 64x4096 of shared memory\nPress Ctrl-C to quit"


def _view(args):
    from .lab import connect
    lab = connect(getattr(args, "lab", None), getattr(args, "backend", None))
    if not hasattr(lab.backend, "datapath_view"):
        raise LabError(f"`labkit {args.cmd}` needs the embedded backend's eBPF datapath; "
                       f"on kind use `kubectl exec -n kube-system ds/cilium -- cilium-dbg ...`")
    return lab.backend.datapath_view()


def _node(args, view) -> str:
    node = args.node or os.environ.get("LABKIT_NODE")
    if not node:
        raise LabError(f"give --node NODE (one of {', '.join(n.name for n in view.plan.nodes)})")
    view.plan.node(node)
    return node


def _print(text: str) -> None:
    sys.stdout.write(text if text.endswith("\n") else text + "\n")


def _kind(args):
    """The kind backend when the command targets it (then Cilium itself answers), else None."""
    if (getattr(args, "backend", None) or os.environ.get("LABKIT_BACKEND")) != "kind":
        return None
    from .lab import connect
    return connect(getattr(args, "lab", None), "kind").backend


def _kind_node(args) -> str:
    node = args.node or os.environ.get("LABKIT_NODE")
    if not node:
        raise LabError("give --node NODE (a kind node, e.g. kind-worker)")
    return node


def on_kind(fn: Callable, live_map: str | None = None, flush: str | None = None) -> Callable:
    """On the kind backend the command is Cilium's own: run it in the node's agent pod and
    print exactly what it prints; on the embedded backend ``fn`` answers from our datapath."""
    def run(args) -> int:
        be = _kind(args)
        if be is None:
            return fn(args)
        maps = be.maps(_kind_node(args))
        if flush:
            maps.flush(flush)
        else:
            _print(maps.raw(live_map, json=getattr(args, "output", "text") == "json"))
        return 0
    return run


# ------------------------------------------------------------------ bpf ... list
def cmd_endpoint_list(args) -> int:
    from .datapath import fmt
    v = _view(args)
    _print(fmt.endpoint_list(v.maps(_node(args, v)).endpoints(), args.output))
    return 0


def cmd_ct_list(args) -> int:
    import time

    from .datapath import fmt
    v = _view(args)
    df = v.maps(_node(args, v)).ct()
    _print(fmt.ct_list(df, args.output, int(time.monotonic()) if args.time_diff else None))
    return 0


def cmd_ct_flush(args) -> int:
    v = _view(args)
    n = v.maps(_node(args, v)).flush("ct")
    print(f"Flushed {n} entries from /sys/fs/bpf/tc/globals/cilium_ct4_global and cilium_ct_any4_global")
    return 0


def cmd_nat_list(args) -> int:
    from .datapath import fmt
    v = _view(args)
    _print(fmt.nat_list(v.maps(_node(args, v)).nat(), args.output))
    return 0


def cmd_nat_flush(args) -> int:
    v = _view(args)
    n = v.maps(_node(args, v)).flush("nat")
    print(f"Flushed {n} entries from /sys/fs/bpf/tc/globals/cilium_snat_v4_external")
    return 0


def cmd_lb_list(args) -> int:
    from .datapath import fmt
    v = _view(args)
    m = v.maps(_node(args, v))
    _print(fmt.lb_list(m.lb(), m.backend_protos(), args.output))
    return 0


def cmd_service_list(args) -> int:
    from .datapath import fmt
    v = _view(args)
    _print(fmt.service_list(v.maps(_node(args, v)).lb(), args.output))
    return 0


def cmd_ipcache_list(args) -> int:
    from .datapath import fmt
    v = _view(args)
    df = v.maps(_node(args, v)).ipcache()
    if df.empty and args.output != "json":
        print("No entries found.", file=sys.stderr)
        return 0
    _print(fmt.ipcache_list(df, args.output))
    return 0


def cmd_metrics_list(args) -> int:
    from .datapath import fmt
    v = _view(args)
    _print(fmt.metrics_list(v.maps(_node(args, v)).metrics_raw(), args.output))
    return 0


# ------------------------------------------------------------------ monitor / observe
def cmd_monitor(args) -> int:
    be = _kind(args)
    if be is not None:     # cilium-dbg monitor in the node's agent pod, streamed as it prints
        import subprocess
        argv = be.monitor_argv(_kind_node(args), from_=args.from_, to=args.to, related_to=args.related_to,
                               duration=args.seconds or 24 * 3600, json=args.json)
        try:
            return subprocess.run(argv).returncode
        except KeyboardInterrupt:
            return 0
    from .datapath import events as ev
    v = _view(args)
    node = args.node or os.environ.get("LABKIT_NODE")
    kw = dict(node=node, from_=args.from_, to=args.to, related_to=args.related_to)
    show = (lambda r: print(ev.monitor_json(r), flush=True)) if args.json else \
        (lambda r: print(r["line"], flush=True))
    v.nodes(node)                       # bad node or endpoint id: one error line, no banner
    for ep in (args.from_, args.to, args.related_to):
        v.check_endpoint(ep, node)
    print(BANNER.format(cpus=os.cpu_count()), file=sys.stderr, flush=True)
    if args.last is not None:
        for r in v.event_rows(seconds=args.last, **kw):
            show(r)
        return 0
    try:
        for r in v.follow(seconds=args.seconds, **kw):
            show(r)
    except KeyboardInterrupt:
        print("\nReceived an interrupt, disconnecting from monitor...", file=sys.stderr)
    return 0


def _compact(f: dict) -> str:
    def end(pod: str, ip: str, port, ident: int) -> str:
        host = pod or ip
        return f"{host}:{port} (ID:{ident})" if port is not None else f"{host} (ID:{ident})"
    t = f["time"].strftime("%b %e %H:%M:%S.%f")[:-3]
    arrow = "<-" if f["is_reply"] else "->" if f["is_reply"] is not None else "<>"
    src = end(f["src_pod"], f["src_ip"], f["src_port"], f["src_identity"])
    dst = end(f["dst_pod"], f["dst_ip"], f["dst_port"], f["dst_identity"])
    if f["is_reply"]:
        src, dst = dst, src
    point = f["observation_point"].lower().replace("_", "-") or "drop"
    verdict = f["verdict"] + (f" ({f['drop_reason']})" if f["drop_reason"] else "")
    return f"{t}: {src} {arrow} {dst} {point} {verdict} ({f['summary']})"


def cmd_observe(args) -> int:
    be = _kind(args)
    if be is not None:     # hubble observe in the node's agent pod
        argv = ["hubble", "observe", "-o", "json" if args.output == "json" else "compact"]
        argv += ["--all"] if args.all else ["--last", str(args.last)]
        argv += ["--since", f"{int(args.since)}s"] if args.since else []
        _print(be.cilium(_kind_node(args), argv, timeout=120).stdout)
        return 0
    from .datapath import events as ev
    v = _view(args)
    node = args.node or os.environ.get("LABKIT_NODE")
    if node:
        v.plan.node(node)

    def show(f: dict) -> None:
        print(json.dumps(f["_json"], separators=(",", ":")) if args.output == "json" else _compact(f), flush=True)

    rows = v.flow_rows(node=node, seconds=args.since)
    for f in (rows if args.all else rows[-args.last:]):
        show(f)
    if args.follow:
        pods = v.pods_by_ip()
        try:
            for r in v.follow(node=node, seconds=args.seconds):
                for f in ev.flows([r], pods):
                    show(f)
        except KeyboardInterrupt:
            pass
    return 0


# ------------------------------------------------------------------ node shells
def node_shell_env(lab, target: str) -> dict[str, str]:
    """For `labkit shell NODE`: a PATH with `cilium` and `hubble` wrappers running labkit.

    `ip netns exec` gives the shell its own mount namespace with a fresh /sys, where the
    BPF filesystem (our pinned maps) is not mounted; the wrappers run labkit back in the
    mount namespace of the `labkit shell` process (nsenter --mount), still in the node.
    """
    if target not in set(lab.nodes["name"]) or not hasattr(lab.backend, "names"):
        return {}
    bindir = Path(lab.backend.names.state_dir) / "bin"
    bindir.mkdir(parents=True, exist_ok=True)
    for tool in ("cilium", "cilium-dbg", "hubble"):
        script = bindir / tool
        script.write_text("#!/bin/sh\n# labkit: the blog's Cilium/Hubble commands, answered by labkit's datapath\n"
                          f'exec nsenter --mount="$LABKIT_HOST_MNT" -- "{sys.executable}" -m labkit.cli "$@"\n')
        script.chmod(0o755)
    return {"PATH": f"{bindir}:{os.environ.get('PATH', '/usr/bin:/bin')}", "LABKIT_NODE": target,
            "LABKIT_LAB": lab.name, "LABKIT_HOST_MNT": f"/proc/{os.getpid()}/ns/mnt"}


# ------------------------------------------------------------------ parser
def register(add: Callable, common: argparse.ArgumentParser, out: argparse.ArgumentParser) -> None:
    """Add the commands to labkit's parser (``add`` is cli.build_parser's helper)."""
    node = argparse.ArgumentParser(add_help=False)
    node.add_argument("--node", default=None, help="node whose datapath to read (default: $LABKIT_NODE)")

    def leaf(parent_sub, name: str, fn: Callable, help: str, parents) -> argparse.ArgumentParser:
        sp = parent_sub.add_parser(name, help=help, description=help, parents=list(parents))
        sp.set_defaults(fn=fn)
        return sp

    bpf = add("bpf", _need_sub, "read the eBPF datapath's maps, as `cilium bpf ...` prints them", parents=())
    maps = bpf.add_subparsers(dest="bpf_map", required=True, metavar="MAP")
    ep = maps.add_parser("endpoint", help="cilium_lxc: local endpoints").add_subparsers(required=True, metavar="CMD")
    leaf(ep, "list", on_kind(cmd_endpoint_list, "endpoints"), "list local endpoints", (common, out, node))
    ct = maps.add_parser("ct", help="connection tracking").add_subparsers(required=True, metavar="CMD")
    sp = leaf(ct, "list", on_kind(cmd_ct_list, "ct"), "list CT entries", (common, out, node))
    sp.add_argument("scope", choices=("global",), help="global (the only CT maps of the lab)")
    sp.add_argument("-d", "--time-diff", action="store_true", help="print remaining seconds")
    sp = leaf(ct, "flush", on_kind(cmd_ct_flush, flush="ct"), "delete all CT entries", (common, node))
    sp.add_argument("scope", choices=("global",))
    nat = maps.add_parser("nat", help="cilium_snat_v4_external").add_subparsers(required=True, metavar="CMD")
    leaf(nat, "list", on_kind(cmd_nat_list, "nat"), "list NAT entries", (common, out, node))
    leaf(nat, "flush", on_kind(cmd_nat_flush, flush="nat"), "delete all NAT entries", (common, node))
    lb = maps.add_parser("lb", help="service load balancer maps").add_subparsers(required=True, metavar="CMD")
    leaf(lb, "list", on_kind(cmd_lb_list, "lb"), "list services and backend slots", (common, out, node))
    ipc = maps.add_parser("ipcache", help="cilium_ipcache").add_subparsers(required=True, metavar="CMD")
    leaf(ipc, "list", on_kind(cmd_ipcache_list, "ipcache"), "list ipcache prefixes", (common, out, node))
    met = maps.add_parser("metrics", help="cilium_metrics").add_subparsers(required=True, metavar="CMD")
    leaf(met, "list", on_kind(cmd_metrics_list, "metrics"), "forwarded/dropped packets by reason", (common, out, node))

    svc = add("service", _need_sub, "services, as `cilium service list` prints them", parents=())
    leaf(svc.add_subparsers(required=True, metavar="CMD"), "list", on_kind(cmd_service_list, "services"), "list services",
         (common, out, node))

    sp = add("monitor", cmd_monitor, "datapath trace and drop events, as `cilium monitor` prints them",
             parents=(common, node))
    sp.add_argument("--from", dest="from_", type=int, metavar="ID", help="only events from this endpoint id")
    sp.add_argument("--to", type=int, metavar="ID", help="only events to this endpoint id")
    sp.add_argument("--related-to", type=int, metavar="ID", help="only events from or to this endpoint id")
    sp.add_argument("-j", "--json", action="store_true", help="one JSON object per event")
    sp.add_argument("--seconds", type=float, default=None, help="stop after this many seconds (default: Ctrl-C)")
    sp.add_argument("--last", type=float, default=None, metavar="SECONDS",
                    help="print the events of the last SECONDS and exit, instead of following")

    sp = add("observe", cmd_observe, "Hubble-like flows (`hubble observe`)", parents=(common, out, node))
    sp.add_argument("--last", type=int, default=20, help="how many recent flows (default 20)")
    sp.add_argument("--all", action="store_true", help="every recorded flow")
    sp.add_argument("--since", type=float, default=None, metavar="SECONDS", help="only flows of the last SECONDS")
    sp.add_argument("-f", "--follow", action="store_true", help="keep printing new flows")
    sp.add_argument("--seconds", type=float, default=None, help="with --follow: stop after this many seconds")


def _need_sub(args) -> int:
    raise LabError(f"`labkit {args.cmd}` needs a subcommand; see labkit {args.cmd} --help")
