"""The packet filter of ``labkit trace``: a small subset of pcap-filter(7).

    tcp and port 80          host 10.244.1.71 and not icmp      udp dst port 53
    src net 10.244.1.0/24    tcp portrange 8000-8080            arp or (icmp and host 10.244.3.5)

Primitives: ``ip``, ``arp``, ``tcp``, ``udp``, ``icmp``; ``[src|dst] host A``; ``[src|dst]
net A/N``; ``[tcp|udp] [src|dst] port N``; ``[tcp|udp] [src|dst] portrange N-M``; joined with
``and`` / ``&&``, ``or`` / ``||``, ``not`` / ``!`` and parentheses (``not`` binds tightest,
then ``and``, then ``or``; pcap gives and/or the same precedence, which only matters for
unparenthesised mixes: write the parentheses). As in pcap, ``host`` also matches ARP's
sender and target addresses, and ``port`` matches TCP or UDP, never a later fragment.

The parsed expression becomes C (:func:`to_c`) for ``LKT_FILTER`` in bpf/lib/pktfilter.h,
generated from the tree only, so no text of the filter ever reaches the compiler;
:func:`matches` is the same meaning in Python, the reference the tests hold the kernel to.
"""

from __future__ import annotations

import ipaddress
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ...errors import LabError

ETH_P_IP, ETH_P_ARP = 0x0800, 0x0806
PROTOS = {"tcp": 6, "udp": 17, "icmp": 1}
DIRS = ("src", "dst", "either", "both")
HELP = (
    "ip, arp, tcp, udp, icmp, [src|dst] host A, [src|dst] net A/N, [tcp|udp] [src|dst] port N, "
    "portrange N-M, joined with and, or, not and ( )"
)


@dataclass(frozen=True)
class Proto:
    name: str  # ip, arp, tcp, udp, icmp


@dataclass(frozen=True)
class Host:
    dir: str  # src, dst, either, both
    net: ipaddress.IPv4Network  # a host is a /32


@dataclass(frozen=True)
class Port:
    dir: str
    lo: int
    hi: int
    proto: str = ""  # tcp, udp or "" (either)


@dataclass(frozen=True)
class Not:
    arg: Node


@dataclass(frozen=True)
class And:
    left: Node
    right: Node


@dataclass(frozen=True)
class Or:
    left: Node
    right: Node


Node = Proto | Host | Port | Not | And | Or
_TOKEN = re.compile(r"\s*(\(|\)|&&|\|\||!|[^\s()!&|]+)")


def _tokens(text: str) -> list[tuple[str, int]]:
    out, pos = [], 0
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m:
            raise _error(text, pos, f"cannot read {text[pos:]!r}")
        out.append((m.group(1), m.start(1)))
        pos = m.end()
    return out


def _error(text: str, pos: int, what: str) -> LabError:
    return LabError(f"filter {text!r}: {what} (at character {pos + 1}); labkit trace knows {HELP}")


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.toks = _tokens(text)
        self.i = 0

    def peek(self) -> str | None:
        return self.toks[self.i][0].lower() if self.i < len(self.toks) else None

    def take(self) -> str:
        tok = self.toks[self.i][0]
        self.i += 1
        return tok

    def fail(self, what: str) -> LabError:
        pos = self.toks[self.i][1] if self.i < len(self.toks) else len(self.text)
        return _error(self.text, pos, what)

    def parse(self) -> Node:
        if not self.toks:
            raise _error(self.text, 0, "empty filter")
        node = self.expr()
        if self.i != len(self.toks):
            raise self.fail(f"unexpected {self.toks[self.i][0]!r}")
        return node

    def expr(self) -> Node:
        node = self.term()
        while self.peek() in ("or", "||"):
            self.take()
            node = Or(node, self.term())
        return node

    def term(self) -> Node:
        node = self.factor()
        while self.peek() in ("and", "&&"):
            self.take()
            node = And(node, self.factor())
        return node

    def factor(self) -> Node:
        tok = self.peek()
        if tok in ("not", "!"):
            self.take()
            return Not(self.factor())
        if tok == "(":
            self.take()
            node = self.expr()
            if self.peek() != ")":
                raise self.fail("missing ')'")
            self.take()
            return node
        return self.primitive()

    def direction(self) -> str:
        """[src|dst|src or dst|src and dst], pcap's direction qualifier."""
        tok = self.peek()
        if tok not in ("src", "dst"):
            return "either"
        self.take()
        nxt = self.toks[self.i + 1][0].lower() if self.i + 1 < len(self.toks) else None
        if self.peek() in ("or", "and") and nxt in ("src", "dst") and nxt != tok:
            joined = self.take().lower()
            self.take()
            return "either" if joined == "or" else "both"
        return tok

    def primitive(self) -> Node:
        tok = self.peek()
        if tok is None:
            raise self.fail("expected a primitive, got the end of the filter")
        proto = ""
        if tok in ("ip", "arp", "tcp", "udp", "icmp"):
            self.take()
            after = self.peek()
            if tok in ("tcp", "udp") and after in ("port", "portrange", "src", "dst"):
                proto = tok
            else:
                return Proto(tok)
        d = self.direction()
        word = self.peek()
        if word in ("port", "portrange"):
            self.take()
            lo, hi = self.ports(word)
            return Port(d, lo, hi, proto)
        if proto:
            raise self.fail(f"expected port or portrange after {proto!r}")
        if word == "host":
            self.take()
            return Host(d, self.network(host=True))
        if word == "net":
            self.take()
            return Host(d, self.network(host=False))
        if d != "either" and word is not None and _is_address(word):  # pcap: "src 10.0.0.1"
            return Host(d, self.network(host=True))
        raise self.fail(f"unknown word {self.toks[self.i][0]!r}" if word else "expected host, net or port")

    def ports(self, word: str) -> tuple[int, int]:
        if self.peek() is None:
            raise self.fail(f"expected a number after {word!r}")
        text = self.take()
        try:
            if word == "portrange":
                a, _, b = text.partition("-")
                lo, hi = int(a), int(b)
            else:
                lo = hi = int(text)
        except ValueError:
            self.i -= 1
            raise self.fail(f"{word} needs {'N-M' if word == 'portrange' else 'a number'}, got {text!r}") from None
        if not (0 <= lo <= hi <= 65535):
            self.i -= 1
            raise self.fail(f"ports are 0-65535 (and N <= M), got {text!r}")
        return lo, hi

    def network(self, *, host: bool) -> ipaddress.IPv4Network:
        if self.peek() is None:
            raise self.fail("expected an IPv4 address")
        text = self.take()
        if host and "/" in text:
            self.i -= 1
            raise self.fail(f"host takes one address; for {text!r} write net {text}")
        try:
            return ipaddress.IPv4Network(text if not host else f"{text}/32", strict=False)
        except ValueError:
            self.i -= 1
            raise self.fail(f"{text!r} is not an IPv4 {'address' if host else 'network (A/N)'}") from None


def _is_address(word: str) -> bool:
    try:
        ipaddress.IPv4Address(word)
        return True
    except ValueError:
        return False


def parse(text: str) -> Node | None:
    """The filter's tree; "" (or only spaces) means every packet: None."""
    if not isinstance(text, str):
        raise LabError(f"the filter must be a string like 'tcp and port 80', got {text!r}")
    if not text.strip():
        return None
    return _Parser(text).parse()


# ---------------------------------------------------------------------- C
def _be32(addr: ipaddress.IPv4Address) -> int:
    """An address as the u32 the C code sees when it reads the four bytes natively."""
    return int.from_bytes(addr.packed, sys.byteorder)


def _either(d: str, src: str, dst: str) -> str:
    return {"src": src, "dst": dst, "either": f"({src} || {dst})", "both": f"({src} && {dst})"}[d]


def to_c(node: Node | None) -> str:
    """A C expression over ``p`` (a ``const struct lkt_pkt *``) with the filter's meaning."""
    if node is None:
        return "1"
    if isinstance(node, Proto):
        if node.name == "ip":
            return f"(p->ethertype == {ETH_P_IP:#x})"
        if node.name == "arp":
            return f"(p->ethertype == {ETH_P_ARP:#x})"
        return f"(p->ethertype == {ETH_P_IP:#x} && p->proto == {PROTOS[node.name]})"
    if isinstance(node, Host):
        mask, addr = _be32(node.net.netmask), _be32(node.net.network_address)
        src, dst = f"((p->saddr & {mask:#x}) == {addr:#x})", f"((p->daddr & {mask:#x}) == {addr:#x})"
        return f"((p->ethertype == {ETH_P_IP:#x} || p->ethertype == {ETH_P_ARP:#x}) && {_either(node.dir, src, dst)})"
    if isinstance(node, Port):

        def rng(f: str) -> str:
            v = f"bpf_ntohs(p->{f})"
            return f"({v} == {node.lo})" if node.lo == node.hi else f"({v} >= {node.lo} && {v} <= {node.hi})"

        proto = f" && p->proto == {PROTOS[node.proto]}" if node.proto else ""
        return (
            f"(p->ethertype == {ETH_P_IP:#x} && p->has_ports{proto} && {_either(node.dir, rng('sport'), rng('dport'))})"
        )
    if isinstance(node, Not):
        return f"(!{to_c(node.arg)})"
    if isinstance(node, And):
        return f"({to_c(node.left)} && {to_c(node.right)})"
    return f"({to_c(node.left)} || {to_c(node.right)})"


def cflags(node: Node | None) -> list[str]:
    """The -D flag that compiles the filter into bpf/trace_tc.c (none: match everything)."""
    return [] if node is None else [f"-DLKT_FILTER(p)={to_c(node)}"]


# ---------------------------------------------------------------------- reference
def matches(node: Node | None, pkt: Mapping[str, Any]) -> bool:
    """The filter's meaning in Python. ``pkt``: ethertype, proto, saddr, daddr (dotted),
    sport, dport, has_ports (what bpf/lib/pktfilter.h's lkt_parse extracts)."""
    if node is None:
        return True
    eth = pkt.get("ethertype")
    if isinstance(node, Proto):
        if node.name == "ip":
            return eth == ETH_P_IP
        if node.name == "arp":
            return eth == ETH_P_ARP
        return eth == ETH_P_IP and pkt.get("proto") == PROTOS[node.name]
    if isinstance(node, Host):
        if eth not in (ETH_P_IP, ETH_P_ARP):
            return False
        s = ipaddress.IPv4Address(pkt["saddr"]) in node.net
        d = ipaddress.IPv4Address(pkt["daddr"]) in node.net
        return {"src": s, "dst": d, "either": s or d, "both": s and d}[node.dir]
    if isinstance(node, Port):
        if eth != ETH_P_IP or not pkt.get("has_ports"):
            return False
        if node.proto and pkt.get("proto") != PROTOS[node.proto]:
            return False
        s = node.lo <= pkt["sport"] <= node.hi
        d = node.lo <= pkt["dport"] <= node.hi
        return {"src": s, "dst": d, "either": s or d, "both": s and d}[node.dir]
    if isinstance(node, Not):
        return not matches(node.arg, pkt)
    if isinstance(node, And):
        return matches(node.left, pkt) and matches(node.right, pkt)
    return matches(node.left, pkt) or matches(node.right, pkt)
