"""The kube-system pods' programs of a lab, in one small process: CoreDNS and the Hubble
relay / UI ports, plus each node's resolver (docker's embedded DNS on 127.0.0.11).

CoreDNS answers as kind's Corefile configures it (``kubernetes cluster.local in-addr.arpa
ip6.arpa { pods insecure; fallthrough in-addr.arpa ip6.arpa; ttl 30 }``, then ``forward
. /etc/resolv.conf``, i.e. docker's DNS): A records of services (the ClusterIP) and of
their endpoints (``10-244-1-182.webpod.native.svc.cluster.local``), pod names
(``10-244-1-182.native.pod.cluster.local``), PTR records of ClusterIPs and endpoints;
other names go to the "upstream", which knows the node names (as docker's DNS knows
its containers) and nothing else (a lab has no internet). DNS messages are built with
dnslib. The records come from a JSON zone file that labkit rewrites when the cluster
changes; it is re-read when its mtime changes.

    python3 kubedns.py --zone FILE --lib SITE_PACKAGES --dns NETNS:IP ... --resolver NETNS ...
                       --http NETNS:IP:PORT:TEXT ...
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import selectors
import socket
import sys
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import netns_sockets

TTL = 30


class Zone:
    """The records of the zone file, reloaded when the file changes."""

    def __init__(self, path: str) -> None:
        self.path, self.mtime = path, 0.0
        self.data: dict = {}

    def get(self) -> dict:
        try:
            m = os.stat(self.path).st_mtime
            if m != self.mtime:
                with open(self.path) as f:
                    self.data = json.load(f)
                self.mtime = m
        except (OSError, ValueError):
            pass
        return self.data


def answer(dnslib, zone: dict, query: bytes, cluster: bool) -> bytes | None:
    """The reply to one query; ``cluster``: as CoreDNS, else as the node's upstream resolver."""
    from dnslib import PTR, QTYPE, RCODE, RR, SOA, A, DNSRecord  # on sys.path only once main() added --lib

    try:
        req = DNSRecord.parse(query)
    except Exception:
        return None
    reply = req.reply(ra=1, aa=0)
    q = req.q
    name = str(q.qname).lower()
    domain = zone.get("domain", "cluster.local") + "."
    a_records: dict = zone.get("a", {})
    ptr_records: dict = zone.get("ptr", {})
    upstream_a: dict = zone.get("upstream_a", {})
    upstream_ptr: dict = zone.get("upstream_ptr", {})
    soa = RR(
        domain,
        QTYPE.SOA,
        ttl=TTL,
        rdata=SOA(f"ns.dns.{domain}", f"hostmaster.{domain}", (zone.get("serial", 1), 7200, 1800, 86400, TTL)),
    )
    if cluster and (name == domain or name.endswith("." + domain)):
        reply.header.aa = 1
        ips = a_records.get(name)
        if ips is None:
            ips = _pod_name(name, domain, zone.get("namespaces", []))
        if ips is None and name not in zone.get("names", []):
            reply.header.rcode = RCODE.NXDOMAIN
            reply.add_auth(soa)
        elif q.qtype in (QTYPE.A, QTYPE.ANY) and ips:
            for ip in ips:
                reply.add_answer(RR(q.qname, QTYPE.A, ttl=TTL, rdata=A(ip)))
        else:
            reply.add_auth(soa)
        return reply.pack()
    if name.endswith(".in-addr.arpa."):
        targets = ptr_records.get(name) if cluster else None
        if targets:
            reply.header.aa = 1
            for t in targets:
                reply.add_answer(RR(q.qname, QTYPE.PTR, ttl=TTL, rdata=PTR(t)))
            return reply.pack()
        target = upstream_ptr.get(name)
        if target and q.qtype in (QTYPE.PTR, QTYPE.ANY):
            reply.add_answer(RR(q.qname, QTYPE.PTR, ttl=600, rdata=PTR(target)))
        elif not target:
            reply.header.rcode = RCODE.NXDOMAIN
        return reply.pack()
    ip = upstream_a.get(name)
    if ip is None:
        reply.header.rcode = RCODE.NXDOMAIN
    elif q.qtype in (QTYPE.A, QTYPE.ANY):
        reply.add_answer(RR(q.qname, QTYPE.A, ttl=600, rdata=A(ip)))
    return reply.pack()


def _pod_name(name: str, domain: str, namespaces: list[str]) -> list[str] | None:
    """``pods insecure``: <a-b-c-d>.<namespace>.pod.<domain> answers a.b.c.d."""
    head = name[: -len(domain) - 1].split(".")
    if len(head) != 3 or head[2] != "pod" or head[1] not in namespaces:
        return None
    try:
        return [str(ipaddress.IPv4Address(head[0].replace("-", ".")))]
    except ValueError:
        return None


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--zone", required=True)
    ap.add_argument("--lib", default="", help="where dnslib is installed (this runs without site-packages)")
    ap.add_argument("--dns", action="append", default=[], help="NETNS:IP of a CoreDNS pod")
    ap.add_argument("--resolver", action="append", default=[], help="NETNS of a node (127.0.0.11:53)")
    ap.add_argument("--http", action="append", default=[], help="NETNS:IP:PORT:TEXT a port answering HTTP")
    ap.add_argument("--ready-fd", type=int, default=-1)
    a = ap.parse_args()
    if a.lib:
        sys.path.append(a.lib)
    import dnslib

    zone = Zone(a.zone)
    sel = selectors.DefaultSelector()
    for cluster, specs in ((True, [s.rsplit(":", 1) for s in a.dns]), (False, [(s, "127.0.0.11") for s in a.resolver])):
        for ns, ip in specs:
            sel.register(netns_sockets.listener(ns, ip, 53, socket.SOCK_DGRAM), selectors.EVENT_READ, ("udp", cluster))
            sel.register(netns_sockets.listener(ns, ip, 53), selectors.EVENT_READ, ("tcp-listen", cluster))
    for spec in a.http:
        ns, ip, port, text = spec.split(":", 3)
        sel.register(netns_sockets.listener(ns, ip, int(port)), selectors.EVENT_READ, ("http-listen", text))
    if a.ready_fd >= 0:
        os.write(a.ready_fd, b"ready\n")
        os.close(a.ready_fd)
    while True:
        for key, _ in sel.select():
            kind, arg = key.data
            s: Any = key.fileobj
            try:
                if kind == "udp":
                    data, peer = s.recvfrom(4096)
                    out = answer(dnslib, zone.get(), data, arg)
                    if out:
                        s.sendto(out, peer)
                elif kind in ("tcp-listen", "http-listen"):
                    conn, _ = s.accept()
                    conn.setblocking(False)
                    sel.register(conn, selectors.EVENT_READ, ("tcp" if kind == "tcp-listen" else "http", arg))
                elif kind == "tcp":
                    tcp_query(sel, s, dnslib, zone, arg)
                else:
                    http(sel, s, arg)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                if kind in ("tcp", "http"):
                    sel.unregister(s)
                    s.close()


def tcp_query(sel, conn: socket.socket, dnslib, zone: Zone, cluster: bool) -> None:
    """DNS over TCP: two-byte length, then the message (one query per read is enough here)."""
    data = conn.recv(65536)
    if len(data) < 2:
        sel.unregister(conn)
        conn.close()
        return
    out = answer(dnslib, zone.get(), data[2 : 2 + int.from_bytes(data[:2], "big")], cluster)
    if out:
        conn.send(len(out).to_bytes(2, "big") + out)


def http(sel, conn: socket.socket, text: str) -> None:
    data = conn.recv(65536)
    if data:
        body = text.encode()
        conn.send(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
    sel.unregister(conn)
    conn.close()


if __name__ == "__main__":
    main()
