"""`hubble observe` with its common filters, on the flows of the backend contract.

The backend streams flows as `hubble observe -o json` lines; the filters (--pod,
--namespace, --ip, --port, --verdict, --protocol, --type, --node-name; each side with
--from-* / --to-*) are applied here, before --last, as the Hubble server applies them,
and each flow is printed compact (hubble's printer, labkit/cilium/hubble.py) or as JSON.
"""

from __future__ import annotations

import argparse
import json
import re

from ..cilium import hubble
from ..cilium.monitor import go_json
from ..errors import LabError
from ..lab import Lab

TYPES = {
    "trace": hubble.MESSAGE_TYPE_TRACE,
    "drop": hubble.MESSAGE_TYPE_DROP,
    "trace-sock": hubble.MESSAGE_TYPE_TRACE_SOCK,
}


def seconds(text: str | None) -> float | None:
    if not text:
        return None
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(s|m|h)?", text.strip())
    if not m:
        raise LabError(f"--since {text!r}: give a duration like 30s, 5m or 1h")
    return float(m[1]) * {"s": 1, "m": 60, "h": 3600, None: 1}[m[2]]


def _pod_match(ep: dict, want: str) -> bool:
    ns, _, name = want.rpartition("/")
    if ns and ep.get("namespace") != ns:
        return False
    return bool(ep.get("pod_name", "")) and ep["pod_name"].startswith(name) if name else bool(ns)


def _port(f: dict, side: str) -> str:
    l4 = f.get("l4") or {}
    for p in l4.values():
        return str((p or {}).get(f"{side}_port", ""))
    return ""


def matches(f: dict, a: argparse.Namespace) -> bool:
    """Every given filter must hold (one of its values), as hubble's flow filters."""
    src, dst, ip = f.get("source") or {}, f.get("destination") or {}, f.get("IP") or {}

    def any_of(values: list[str], test) -> bool:
        return not values or any(test(v) for v in values)

    checks = [
        any_of(a.pod, lambda v: _pod_match(src, v) or _pod_match(dst, v)),
        any_of(a.from_pod, lambda v: _pod_match(src, v)),
        any_of(a.to_pod, lambda v: _pod_match(dst, v)),
        any_of(a.namespace, lambda v: v in (src.get("namespace"), dst.get("namespace"))),
        any_of(a.ip, lambda v: v in (ip.get("source"), ip.get("destination"))),
        any_of(a.from_ip, lambda v: v == ip.get("source")),
        any_of(a.to_ip, lambda v: v == ip.get("destination")),
        any_of(a.port, lambda v: v in (_port(f, "source"), _port(f, "destination"))),
        any_of(a.from_port, lambda v: v == _port(f, "source")),
        any_of(a.to_port, lambda v: v == _port(f, "destination")),
        any_of(a.verdict, lambda v: v.upper() == f.get("verdict")),
        any_of(a.protocol, lambda v: v.upper() in {k.upper() for k in (f.get("l4") or {})} or
               (v.lower() == "icmp" and "ICMPv4" in (f.get("l4") or {}))),
        any_of(a.type, lambda v: TYPES.get(v.split(":")[0]) == (f.get("event_type") or {}).get("type")),
        any_of(a.node_name, lambda v: v == f.get("node_name")),
    ]  # fmt: skip
    return all(checks)


def observe(lab: Lab, a: argparse.Namespace) -> int:
    def show(doc: dict) -> str:
        if a.output in ("json", "jsonpb"):
            return go_json(doc)
        line = hubble.compact(doc)
        if a.print_node_name:
            stamp, _, rest = line.partition(": ")
            line = f"{stamp} [{doc.get('node_name', '')}]: {rest}"
        return line

    since = seconds(a.since)
    last = None if a.all or since else (a.last if a.last is not None else (0 if a.follow else 20))
    docs = [json.loads(x) for x in lab.backend.observe_lines(a.node, last=None, seconds=since, output="json")]
    docs = [d for d in docs if isinstance(d.get("flow"), dict) and matches(d["flow"], a)]
    for d in docs if last is None else docs[len(docs) - last :] if last else []:
        print(show(d), flush=True)
    if a.follow:
        try:
            for line in lab.backend.observe_lines(a.node, last=0, follow=True, output="json"):
                d = json.loads(line)
                if isinstance(d.get("flow"), dict) and matches(d["flow"], a):
                    print(show(d), flush=True)
        except KeyboardInterrupt:
            pass
    return 0
