"""Offsets of the two kernel struct fields the tracer reads, found at run time.

The tracer's tracepoint programs know an skb only by its address; to tell which device
(and so which network namespace of the lab) an event happened on, they read
``skb->dev`` and ``dev->ifindex`` from kernel memory. Without kernel BTF the offsets
cannot be looked up, and the distribution's headers describe another kernel. But the
verifier knows them: a tc program that reads ``__sk_buff.ifindex`` is rewritten into
two loads, ``skb->dev`` then ``dev->ifindex`` (net/core/filter.c, bpf_convert_ctx_access),
and the rewritten program can be read back (BPF_OBJ_GET_INFO_BY_FD, xlated_prog_insns).
So a two-instruction program is loaded, its rewrite read, and the offsets taken from it.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from functools import cache

from ...errors import ExitStatus, LabError
from . import bpfsys

SKB_IFINDEX = 40  # offsetof(struct __sk_buff, ifindex): UAPI, the same on every kernel
LDX_W, LDX_DW, EXIT = 0x61, 0x79, 0x95


@dataclass(frozen=True)
class Offsets:
    skb_dev: int  # offsetof(struct sk_buff, dev)
    dev_ifindex: int  # offsetof(struct net_device, ifindex)

    def cflags(self) -> list[str]:
        return [f"-DSKB_DEV_OFF={self.skb_dev}", f"-DDEV_IFINDEX_OFF={self.dev_ifindex}"]


def probe_program() -> bytes:
    """r0 = skb->ifindex; exit."""
    return struct.pack("<BBhi", LDX_W, 1 << 4, SKB_IFINDEX, 0) + struct.pack("<BBhi", EXIT, 0, 0, 0)


def from_xlated(insns: bytes) -> Offsets:
    """The offsets in the verifier's rewrite of :func:`probe_program`."""
    code = [struct.unpack_from("<BBhi", insns, i) for i in range(0, len(insns) - 7, 8)]
    for i, (op, regs, off, _imm) in enumerate(code):
        if op == LDX_DW and (regs >> 4) == 1:  # reg = *(u64 *)(r1 + off): skb->dev
            dev_reg = regs & 0x0F
            for op2, regs2, off2, _ in code[i + 1 :]:
                if op2 == LDX_W and (regs2 >> 4) == dev_reg:
                    return Offsets(off, off2)
    raise LabError(
        "cannot find sk_buff.dev / net_device.ifindex in the verifier's rewrite of skb->ifindex; "
        "labkit trace does not know this kernel",
        exit_code=ExitStatus.FAILURE,
    )


@cache
def offsets() -> Offsets:
    """The running kernel's offsets (root: loading and reading back a program)."""
    fd = bpfsys.prog_load(probe_program(), bpfsys.PROG_SCHED_CLS, "lkt_offsets")
    try:
        return from_xlated(bpfsys.prog_xlated(fd))
    finally:
        os.close(fd)
