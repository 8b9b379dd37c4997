"""The C structs of the maps and events against the numpy dtypes that read them.

As Cilium's bpf_alignchecker compares its C structs with their Go mirrors: the structs of
bpf/lib/common.h and bpf/lib/trace.h are compiled by bcc (the datapath's own compiler and
target), each field's offsetof and size and each struct's sizeof read back from the
bytecode, and compared with labkit/embedded/ebpf/layouts.py and events.py. The packers that
write map entries are checked against the same dtypes (no compiler needed).
"""

from __future__ import annotations

import re
import struct

import numpy as np
import pytest

from labkit.embedded.ebpf import events, source
from labkit.embedded.ebpf import layouts as L

HEADERS = ("lib/common.h", "lib/trace.h")
# C struct -> the dtype that reads or writes it
DTYPES: dict[str, np.dtype] = {
    "endpoint_key": L.ENDPOINT_KEY,
    "endpoint_info": L.ENDPOINT_INFO,
    "ipcache_key": L.IPCACHE_KEY,
    "remote_endpoint_info": L.IPCACHE_VALUE,
    "ipv4_ct_tuple": L.CT_KEY,
    "ct_entry": L.CT_ENTRY,
    "lb4_key": L.LB4_KEY,
    "lb4_service": L.LB4_SERVICE,
    "lb4_backend": L.LB4_BACKEND,
    "lb4_reverse_nat": L.REVNAT_VALUE,
    "ipv4_revnat_tuple": L.REVNAT_SK_KEY,
    "ipv4_revnat_entry": L.REVNAT_SK_VALUE,
    "ipv4_nat_entry": L.NAT_ENTRY,
    "metrics_key": L.METRICS_KEY,
    "metrics_value": L.METRICS_VALUE,
    "node_config": L.NODE_CONFIG,
    "trace_notify": events.NOTIFY,
    "trace_sock_notify": L.TRACE_SOCK_NOTIFY,
}
INTERNAL = {"lk_pkt"}  # the programs' own view of a packet: never in a map
# C field -> dtype field, where the reader names it for what it carries
ALIASES = {"trace_notify": {"orig_pad1": "line", "orig_pad2": "file", "orig_pad3": "cpu"}}
PADDING = re.compile(r"^(pad\d*|reserved\d*|unused)$")


def c_structs() -> dict[str, list[str]]:
    """struct name -> field names, in order, from the headers' text (the compiler gives the numbers)."""
    out: dict[str, list[str]] = {}
    for h in HEADERS:
        text = re.sub(r"/\*.*?\*/|//[^\n]*", "", (source.BPF_DIR / h).read_text(), flags=re.S)
        for name, body in re.findall(r"^struct (\w+) \{$(.*?)^\}", text, flags=re.M | re.S):
            out[name] = re.findall(r"(\w+)\s*(?:\[[^\]]*\])?\s*;", body)
    return out


def test_every_struct_of_the_headers_has_a_dtype():
    assert set(c_structs()) == set(DTYPES) | INTERNAL


@pytest.fixture(scope="module")
def compiled() -> dict[str, int]:
    """probe name -> value, from bcc: each probe function returns one constant."""
    from bcc import BPF  # heavy (clang); the datapath's compiler, so its target's layout rules

    probes = []
    for s, fields in c_structs().items():
        probes.append(f"int lk_size__{s}(void *ctx) {{ return sizeof(struct {s}); }}")
        for f in fields:
            probes.append(
                f"int lk_field__{s}__{f}(void *ctx) {{ return __builtin_offsetof(struct {s}, {f}) << 16 | "
                f"sizeof(((struct {s} *)0)->{f}); }}"
            )
    text = source.inline(source.BPF_DIR / "lib" / "trace.h") + "\n".join(probes) + "\n"
    b = BPF(text=text.encode(), cflags=["-Wno-unused-function"])
    try:
        out = {}
        for line in probes:
            fn = line.split("(")[0].split()[1]
            insns = b.dump_func(fn.encode())
            op, regs, _, imm = struct.unpack_from("<BBhi", insns, 0)
            assert op in (0xB7, 0xB4) and regs & 0x0F == 0 and insns[8] == 0x95, (fn, insns.hex())  # r0 = imm; exit
            out[fn] = imm
        return out
    finally:
        b.cleanup()


@pytest.mark.root
@pytest.mark.parametrize("name", sorted(DTYPES))
def test_struct_layout_matches_its_dtype(compiled, name):
    dt = DTYPES[name]
    assert compiled[f"lk_size__{name}"] == dt.itemsize, f"sizeof(struct {name}) != {dt}.itemsize"
    assert dt.fields is not None
    aliases = ALIASES.get(name, {})
    matched = set()
    for f in c_structs()[name]:
        v = compiled[f"lk_field__{name}__{f}"]
        off, size = v >> 16, v & 0xFFFF
        col = aliases.get(f, f)
        if col not in dt.fields:
            assert PADDING.match(f), f"struct {name}.{f} (offset {off}) has no field in its dtype"
            continue
        matched.add(col)
        fdt, foff = dt.fields[col][:2]
        assert foff == off, f"struct {name}.{f}: offsetof {off}, dtype {col} at {foff}"
        # a MAC in a __u64 is read as its 6 bytes (V6); everything else is the C field's size
        assert fdt.itemsize == size or (fdt.kind == "V" and fdt.itemsize < size), f"struct {name}.{f} size"
    unmatched = [c for c in dt.names or () if c not in matched]
    assert all(PADDING.match(c) or c.startswith("pad") for c in unmatched), (name, unmatched)


def test_packers_write_what_the_dtypes_read():
    ep = np.frombuffer(L.endpoint_info(9, 359, 0, "1e:97:a3:67:c6:d1", "a6:25:b4:a1:25:0a", 32693), L.ENDPOINT_INFO)[0]
    assert (ep["ifindex"], ep["lxc_id"], ep["sec_id"], L.macs([ep["mac"]])) == (9, 359, 32693, ["1E:97:A3:67:C6:D1"])
    key = np.frombuffer(L.endpoint_key("10.244.1.182"), L.ENDPOINT_KEY)[0]
    assert (L.ips([key["ip4"]]), key["family"]) == (["10.244.1.182"], 1)
    ipc = np.frombuffer(L.ipcache_key("10.244.2.0/24"), L.IPCACHE_KEY)[0]
    assert (ipc["prefixlen"], L.ips([ipc["ip4"]]), ipc["family"]) == (32 + 24, ["10.244.2.0"], 1)
    val = np.frombuffer(L.ipcache_value(6, "172.18.0.4"), L.IPCACHE_VALUE)[0]
    assert (val["sec_identity"], L.ips([val["tunnel_endpoint"]]), val["flags"]) == (6, ["172.18.0.4"], 0)
    lbk = np.frombuffer(L.lb4_key("10.96.92.233", 80, "TCP", 2), L.LB4_KEY)[0]
    assert (L.ips([lbk["address"]]), lbk["dport"], lbk["backend_slot"], lbk["proto"]) == (["10.96.92.233"], 80, 2, 6)
    svc = np.frombuffer(L.lb4_service(12, 2, 7), L.LB4_SERVICE)[0]
    assert (svc["backend_id"], svc["count"], svc["rev_nat_index"]) == (12, 2, 7)
    be = np.frombuffer(L.lb4_backend("10.244.1.182", 8080, "UDP"), L.LB4_BACKEND)[0]
    assert (L.ips([be["address"]]), be["port"], be["proto"]) == (["10.244.1.182"], 8080, 17)
    rn = np.frombuffer(L.revnat_value("10.96.92.233", 80), L.REVNAT_VALUE)[0]
    assert (L.ips([rn["address"]]), rn["port"], np.frombuffer(L.revnat_key(7), ">u2")[0]) == (["10.96.92.233"], 80, 7)
    cfg = np.frombuffer(L.node_config("172.18.0.3", "10.244.1.113", 4), L.NODE_CONFIG)[0]
    assert (L.ips([cfg["node_ipv4"], cfg["router_ipv4"]]), cfg["native_ifindex"]) == (["172.18.0.3", "10.244.1.113"], 4)
