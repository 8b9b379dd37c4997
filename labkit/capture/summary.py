"""One-line summaries that read like ``tcpdump -n -S`` (no name resolution, absolute seq).

Students put our lines next to the blog's tcpdump output, so the text follows tcpdump's
default verbosity for what labs show: ARP, IPv4 TCP (flags, seq/ack, win, options, HTTP
first line on port 80/8080), UDP and ICMP echo. Address and port text is built once per
distinct value, then gathered; only TCP options other than Linux's usual timestamp layout
and HTTP payloads are looked at packet by packet. Other protocols get a short generic line
(e.g. no DNS decoding: ``UDP, length N``).
"""

from __future__ import annotations

import numpy as np

from .decode import ETH_P_ARP, Fields, be32
from .frames import Frames

_FLAG_CHARS = ((0x01, "F"), (0x02, "S"), (0x04, "R"), (0x08, "P"), (0x10, "."), (0x20, "U"), (0x40, "E"), (0x80, "W"))
TCP_FLAGS = [("".join(c for bit, c in _FLAG_CHARS if f & bit) or "none") for f in range(256)]
"""tcpdump's flag string for each flags byte (without the brackets)."""
BAD_OPT = "[bad opt]"
TRUNCATED = " [|tcp]"
_OPT_NAMES = {2: "mss", 3: "wscale", 4: "sackOK", 5: "sack", 8: "TS"}

_HTTP_PORTS = (80, 8080)
_HTTP_METHODS = frozenset(
    [
        "GET",
        "PUT",
        "COPY",
        "HEAD",
        "LOCK",
        "MOVE",
        "POLL",
        "POST",
        "BCOPY",
        "BMOVE",
        "MKCOL",
        "TRACE",
        "LABEL",
        "MERGE",
        "DELETE",
        "SEARCH",
        "UNLOCK",
        "REPORT",
        "UPDATE",
        "NOTIFY",
        "BDELETE",
        "CONNECT",
        "OPTIONS",
        "CHECKIN",
        "PROPFIND",
        "CHECKOUT",
        "BPROPFIND",
        "BPROPPATCH",
        "UNCHECKOUT",
        "MKACTIVITY",
        "MKWORKSPACE",
        "UNSUBSCRIBE",
        "RPC_CONNECT",
        "VERSION-CONTROL",
        "BASELINE-CONTROL",
    ]
)
_ICMP_TYPES = {0: "echo reply", 8: "echo request"}
_UNREACH = {
    0: "net {} unreachable",
    1: "host {} unreachable",
    2: "{} protocol {} unreachable",
    3: "{} {} port {} unreachable",
}
_PORTS = np.array([str(p) for p in range(65536)], dtype=object)


def text_of(values: np.ndarray, fmt) -> np.ndarray:
    """Format each distinct value once with ``fmt`` and gather: object array of str."""
    if len(values) == 0:
        return np.empty(0, dtype=object)
    uniq, inv = np.unique(values, return_inverse=True)
    return np.array([fmt(v) for v in uniq.tolist()], dtype=object)[inv.reshape(-1)]


def ip_text(v: int) -> str:
    return f"{v >> 24}.{(v >> 16) & 255}.{(v >> 8) & 255}.{v & 255}"


def mac_text(v: int) -> str:
    return ":".join(f"{(v >> s) & 255:02x}" for s in range(40, -1, -8))


def tcp_options(opts: bytes, cut: bool = False) -> str:
    """tcpdump's ``options [...]`` body for raw TCP option bytes (``cut``: snaplen cut them)."""
    out: list[str] = []
    i = 0
    while i < len(opts):
        if cut and opts[i] > 1 and i + 1 >= len(opts):  # only the kind byte captured
            return ",".join(out + [""]) + TRUNCATED
        if cut and opts[i] > 1 and i + opts[i + 1] > len(opts):  # kind and length, data cut
            kind, size = opts[i], opts[i + 1]
            name = f"sack {(size - 2) // 8} " if kind == 5 else _OPT_NAMES.get(kind, f"unknown-{kind}")
            return ",".join(out + [name + TRUNCATED + (">" if kind in (5, 8) else "")])
        kind = opts[i]
        if kind == 0:
            out.append("eol")
            break
        if kind == 1:
            out.append("nop")
            i += 1
            continue
        if i + 1 >= len(opts) or opts[i + 1] < 2 or i + opts[i + 1] > len(opts):
            out.append(BAD_OPT)
            break
        size = opts[i + 1]
        data = opts[i + 2 : i + size]
        if kind == 2 and size == 4:
            out.append(f"mss {int.from_bytes(data, 'big')}")
        elif kind == 3 and size == 3:
            out.append(f"wscale {data[0]}")
        elif kind == 4 and size == 2:
            out.append("sackOK")
        elif kind == 5 and (size - 2) % 8 == 0:
            blocks = "".join(
                f"{{{int.from_bytes(data[j : j + 4], 'big')}:{int.from_bytes(data[j + 4 : j + 8], 'big')}}}"
                for j in range(0, size - 2, 8)
            )
            out.append(f"sack {(size - 2) // 8} {blocks}")
        elif kind == 8 and size == 10:
            out.append(f"TS val {int.from_bytes(data[:4], 'big')} ecr {int.from_bytes(data[4:], 'big')}")
        else:
            out.append(f"unknown-{kind} 0x{data.hex()}" if data else f"unknown-{kind}")
        i += size
    if cut:
        return ",".join(out) + ("," if out else "") + TRUNCATED
    return ",".join(out)


def _token(payload: bytes, start: int) -> tuple[bytes, int] | None:
    """The space-delimited token at ``start`` and where the next one starts, or None when
    no delimiter follows it in ``payload`` (as tcpdump, which then names only the protocol)."""
    for i in range(start, len(payload)):
        if payload[i] in b" \r\n":
            j = i
            while j < len(payload) and payload[j] == 0x20:
                j += 1
            return payload[start:i], j
        if not 0x21 <= payload[i] < 0x7F:
            return None
    return None


def http_text(payload: bytes, cut: bool = False) -> str:
    """What tcpdump appends to a TCP segment on an HTTP port: ': HTTP[: first line]'
    (``cut``: snaplen cut the payload)."""
    first = _token(payload, 0)
    if first is None:
        return ": HTTP"
    if first[0].decode("ascii").upper() not in _HTTP_METHODS:
        second = _token(payload, first[1])
        if second is None or not (len(second[0]) == 3 and second[0].isdigit()):
            return ": HTTP"
    for i, c in enumerate(payload):
        if c == 0x0A or c == 0x0D:
            if c == 0x0D and payload[i + 1 : i + 2] != b"\n":
                return ": HTTP" if i + 1 < len(payload) or not cut else ": HTTP [|http]"
            return f": HTTP: {payload[:i].decode('ascii')}"
        if not (0x20 <= c < 0x7F or c == 0x09):
            return ": HTTP"
    return ": HTTP [|http]" if cut else f": HTTP: {payload.decode('ascii')} [|http]"


def summaries(frames: Frames, f: Fields, src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """One tcpdump-like line per frame; ``src``/``dst`` are the IPv4 address texts."""
    out = np.empty(f.n, dtype=object)
    m = np.flatnonzero(~(f.is_arp | f.is_ip))
    out[m] = [
        " [|arp]" if e == ETH_P_ARP else (f"ethertype 0x{e:04x}, length {ln}" if e >= 0 else f"[|ether], length {ln}")
        for e, ln in zip(f.ethertype[m].tolist(), frames.origlen[m].tolist())
    ]
    _arp(out, frames, f, src, dst)
    _ip_other(out, frames, f, src, dst)
    _tcp(out, frames, f, src, dst)
    _udp(out, f, src, dst)
    _icmp(out, frames, f, src, dst)
    return out


def _arp(out, frames: Frames, f: Fields, src, dst) -> None:
    m = np.flatnonzero(f.is_arp)
    if not len(m):
        return
    length = (frames.origlen[m] - 14).tolist()
    sha, tha = text_of(f.arp_sha[m], mac_text), text_of(f.arp_tha[m], mac_text)
    lines = []
    for op, s, d, sh, th, th_v, ln in zip(
        f.arp_op[m].tolist(), src[m], dst[m], sha, tha, f.arp_tha[m].tolist(), length
    ):
        if op == 1:
            lines.append(f"ARP, Request who-has {d}{f' ({th})' if th_v else ''} tell {s}, length {ln}")
        elif op == 2:
            lines.append(f"ARP, Reply {s} is-at {sh}, length {ln}")
        else:
            lines.append(f"ARP, Unknown ({op}), length {ln}")
    out[m] = lines


def _ip_other(out, frames: Frames, f: Fields, src, dst) -> None:
    """IPv4 without a decoded L4 header: later fragments, other protocols, cut-short headers."""
    m = np.flatnonzero(f.is_ip & ~(f.is_tcp | f.is_udp | f.is_icmp))
    names = {1: "icmp", 6: "tcp", 17: "udp"}
    lines = []
    for i, s, d, p, ff, pl, cl in zip(
        m.tolist(),
        src[m],
        dst[m],
        f.ip_proto[m].tolist(),
        f.first_frag[m].tolist(),
        f.payload_len[m].tolist(),
        f.l4_caplen[m].tolist(),
    ):
        if not ff:
            lines.append(f"IP {s} > {d}: ip-proto-{p}")
        elif p not in names:
            lines.append(f"IP {s} > {d}:  ip-proto-{p} {pl}")
        elif p != 1 and cl >= 4:  # ports captured, rest of the header cut off
            l4 = int(f.l4[i])
            sp, dp = (int.from_bytes(frames.buf[l4 + k : l4 + k + 2].tobytes(), "big") for k in (0, 2))
            lines.append(f"IP {s}.{sp} > {d}.{dp}:  [|{names[p]}]")
        else:
            lines.append(f"IP {s} > {d}:  [|{names[p]}]")
    out[m] = lines


def _tcp(out, frames: Frames, f: Fields, src, dst) -> None:
    m = np.flatnonzero(f.is_tcp)
    if not len(m):
        return
    buf, l4, hlen = frames.buf, f.l4[m], f.tcp_hlen[m]
    flags, plen = f.tcp_flags[m], f.payload_len[m]
    seq, ack = f.tcp_seq[m], f.tcp_ack[m]
    seq_txt = np.full(len(m), "", dtype=object)
    show_seq = (plen > 0) | ((flags & 0x07) != 0)
    seq_txt[show_seq] = [f", seq {s}" for s in seq[show_seq].tolist()]
    data = plen > 0
    seq_txt[data] = seq_txt[data] + np.array(
        [f":{e}" for e in ((seq[data] + plen[data]) & 0xFFFFFFFF).tolist()], dtype=object
    )
    ack_txt = np.full(len(m), "", dtype=object)
    has_ack = (flags & 0x10) != 0
    ack_txt[has_ack] = [f", ack {a}" for a in ack[has_ack].tolist()]
    urg = (flags & 0x20) != 0
    ack_txt[urg] = ack_txt[urg] + np.array(
        [f", win {w}, urg {u}" for w, u in zip(f.tcp_win[m][urg].tolist(), f.tcp_urp[m][urg].tolist())], dtype=object
    )
    win_txt = np.where(urg, "", np.array([", win "], dtype=object) + _PORTS[f.tcp_win[m]])

    opt_txt = np.full(len(m), "", dtype=object)
    # Linux's usual layout: nop,nop,TS (12 option bytes): vectorised.
    ts = (
        (hlen == 32)
        & (f.l4_caplen[m] >= 32)
        & (buf[l4 + 20] == 1)
        & (buf[l4 + 21] == 1)
        & (buf[l4 + 22] == 8)
        & (buf[l4 + 23] == 10)
    )
    if ts.any():
        lt = l4[ts]
        val = be32(buf, lt + 24)
        ecr = be32(buf, lt + 28)
        opt_txt[ts] = [f", options [nop,nop,TS val {v} ecr {e}]" for v, e in zip(val.tolist(), ecr.tolist())]
    other = np.flatnonzero((hlen > 20) & ~ts)
    caplen_l4 = f.l4_caplen[m]
    for i in other.tolist():
        end = min(int(hlen[i]), int(caplen_l4[i]))
        text = tcp_options(buf[l4[i] + 20 : l4[i] + end].tobytes(), cut=end < int(hlen[i]))
        # tcpdump ends the whole line at a malformed or cut option
        opt_txt[i] = (
            f", options [{text}" if text.endswith((BAD_OPT, TRUNCATED, TRUNCATED + ">")) else f", options [{text}]"
        )

    tail = np.full(len(m), "", dtype=object)
    sport, dport = f.sport[m], f.dport[m]
    http = np.flatnonzero(data & (np.isin(sport, _HTTP_PORTS) | np.isin(dport, _HTTP_PORTS)))
    for i in http.tolist():
        start = int(l4[i] + hlen[i])
        n = max(0, min(int(plen[i]), int(caplen_l4[i] - hlen[i])))
        tail[i] = http_text(buf[start : start + n].tobytes(), cut=n < int(plen[i]))

    flag_txt = np.array(TCP_FLAGS, dtype=object)[flags]
    lines = [
        f"IP {s}.{sp} > {d}.{dp}: Flags [{fl}]{sq}{ak}{w}{op}, length {pl}{t}"
        for s, sp, d, dp, fl, sq, ak, w, op, pl, t in zip(
            src[m],
            _PORTS[sport],
            dst[m],
            _PORTS[dport],
            flag_txt,
            seq_txt,
            ack_txt,
            win_txt,
            opt_txt,
            plen.tolist(),
            tail,
        )
    ]
    for i in other.tolist():
        for cut in (BAD_OPT, TRUNCATED + ">", TRUNCATED):
            if opt_txt[i].endswith(cut):
                lines[i] = lines[i][: lines[i].rindex(cut) + len(cut)]
    out[m] = lines


def _udp(out, f: Fields, src, dst) -> None:
    m = np.flatnonzero(f.is_udp)
    out[m] = [
        f"IP {s}.{sp} > {d}.{dp}: UDP, length {pl}"
        for s, sp, d, dp, pl in zip(src[m], _PORTS[f.sport[m]], dst[m], _PORTS[f.dport[m]], f.payload_len[m].tolist())
    ]


def _icmp(out, frames: Frames, f: Fields, src, dst) -> None:
    m = np.flatnonzero(f.is_icmp)
    lines = []
    for i, s, d, t, c, ident, sq, pl in zip(
        m.tolist(),
        src[m],
        dst[m],
        f.icmp_type[m].tolist(),
        f.icmp_code[m].tolist(),
        f.icmp_id[m].tolist(),
        f.icmp_seq[m].tolist(),
        f.payload_len[m].tolist(),
    ):
        if t in _ICMP_TYPES:
            what = f"{_ICMP_TYPES[t]}, id {ident}, seq {sq}"
        elif t == 3 and c in _UNREACH:
            what = _unreachable(frames, f, i, c)
        elif t == 11 and c == 0:
            what = "time exceeded in-transit"
        else:
            what = f"type-#{t}"
        lines.append(f"IP {s} > {d}: ICMP {what}, length {pl}")
    out[m] = lines


def _unreachable(frames: Frames, f: Fields, i: int, code: int) -> str:
    """Destination unreachable: name what the quoted (inner) packet was sent to."""
    buf, inner = frames.buf, int(f.l4[i]) + 8
    ihl = (int(buf[inner]) & 0x0F) * 4
    proto = int(buf[inner + 9])
    dst = ip_text(int.from_bytes(buf[inner + 16 : inner + 20].tobytes(), "big"))
    if code == 3:
        port = int.from_bytes(buf[inner + ihl + 2 : inner + ihl + 4].tobytes(), "big")
        return _UNREACH[3].format(dst, {6: "tcp", 17: "udp"}.get(proto, f"ip-proto-{proto}"), port)
    if code == 2:
        return _UNREACH[2].format(dst, proto)
    return _UNREACH[code].format(dst)
