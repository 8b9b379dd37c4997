"""A BPF ring buffer consumer in plain Python (mmap + poll), for the event agent.

Why not libbcc's: loading libbcc (with its LLVM) costs ~60 MB of resident memory per lab
for what is a few lines of pointer arithmetic. The kernel's layout (kernel/bpf/ringbuf.c):
page 0 is the consumer position (read-write); from page 1, the producer position page and
then the data area, mapped twice in a row so a record never wraps. Each record has an
8-byte header: u32 length (bit 31 busy, bit 30 discarded) and u32 page offset.
"""

from __future__ import annotations

import mmap
import select
import struct
import time
from collections.abc import Callable

BUSY, DISCARD = 1 << 31, 1 << 30
HDR = 8
_U64 = struct.Struct("=Q")
_U32 = struct.Struct("=I")


class RingBuffer:
    """One ring buffer map (its fd and data size in bytes, a power of two)."""

    def __init__(self, fd: int, size: int, on_record: Callable[[bytes], None]) -> None:
        page = mmap.PAGESIZE
        self.fd, self.size, self.mask, self.on_record = fd, size, size - 1, on_record
        self.consumer = mmap.mmap(fd, page, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE, offset=0)
        self.producer = mmap.mmap(fd, page + 2 * size, mmap.MAP_SHARED, mmap.PROT_READ, offset=page)
        self.data_at = page

    def drain(self) -> int:
        """Hand every committed record to ``on_record``; return how many."""
        cons = _U64.unpack_from(self.consumer, 0)[0]
        prod = _U64.unpack_from(self.producer, 0)[0]
        n = 0
        while cons < prod:
            at = self.data_at + (cons & self.mask)
            length = _U32.unpack_from(self.producer, at)[0]
            if length & BUSY:
                break  # reserved, not yet committed
            size = length & ~(BUSY | DISCARD)
            if not length & DISCARD:
                self.on_record(bytes(self.producer[at + HDR : at + HDR + size]))
                n += 1
            cons += (size + HDR + 7) & ~7
            _U64.pack_into(self.consumer, 0, cons)  # hand the space back to the kernel
        return n

    def close(self) -> None:
        self.consumer.close()
        self.producer.close()


def poll_all(rings: list[RingBuffer], timeout_ms: int) -> int:
    """Wait until any ring has data (or the timeout), then drain them all."""
    poller = select.poll()
    for r in rings:
        poller.register(r.fd, select.POLLIN)
    poller.poll(timeout_ms)
    return sum(r.drain() for r in rings)


def positions(fd: int) -> tuple[int, int]:
    """(consumer, producer) positions of a ring buffer, read without consuming."""
    page = mmap.PAGESIZE
    with (
        mmap.mmap(fd, page, mmap.MAP_SHARED, mmap.PROT_READ, offset=0) as c,
        mmap.mmap(fd, page, mmap.MAP_SHARED, mmap.PROT_READ, offset=page) as p,
    ):
        return _U64.unpack_from(c, 0)[0], _U64.unpack_from(p, 0)[0]


def wait_drained(fd: int, timeout: float = 2.0) -> bool:
    """Wait until the consumer (the agent) has taken every record produced so far, so a
    reader of the agent's files sees all events up to now. False on timeout."""
    target = positions(fd)[1]
    deadline = time.monotonic() + timeout
    while positions(fd)[0] < target:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True
