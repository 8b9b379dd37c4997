"""Tracepoint formats, read from tracefs at run time (never from kernel headers).

Each tracepoint's ``events/<system>/<name>/format`` gives its id (for perf_event_open),
the offset and size of every field of its record, and the print format, where
``__print_symbolic`` tables name enum values (skb:kfree_skb's drop reasons). Reading
them at run time is what makes the tracer right on every kernel: bcc compiles against
the distribution's headers, which need not match the running kernel.

tracefs is often not mounted. Then a short-lived child process mounts it in a private
mount namespace of its own, reads the formats and exits: the mount never appears in the
host's mount table, and it is gone with the child whatever happens (unmounting is the
kernel's job, not ours). ``$LABKIT_TRACEFS`` points at another tracefs (or a copy of one:
tests use that to play a kernel without some tracepoint).
"""

from __future__ import annotations

import ctypes
import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from ...errors import ExitStatus, LabError
from ...spec import REPO

TRACEFS = Path("/sys/kernel/tracing")

# tracepoint -> the fields the programs of bpf/trace_tp.c read (OFF_<name>_<field>)
NEEDED: dict[str, tuple[str, ...]] = {
    "net:net_dev_queue": ("skbaddr", "len", "name"),
    "net:net_dev_start_xmit": ("skbaddr", "len", "name", "protocol"),
    "net:netif_rx": ("skbaddr", "len", "name"),
    "net:netif_receive_skb": ("skbaddr", "len", "name"),
    "skb:kfree_skb": ("skbaddr", "location", "reason"),
    "skb:consume_skb": ("skbaddr", "location"),
    "tcp:tcp_send_reset": ("skbaddr", "reason"),
    "skb:skb_copy_datagram_iovec": ("skbaddr", "len"),
    "fib:fib_table_lookup": ("tb_id", "err", "oif", "src", "dst", "gw4", "gw6", "name"),
    "neigh:neigh_create": ("dev", "primary_key4", "created"),
    "neigh:neigh_event_send_done": ("dev", "primary_key4", "nud_state", "err"),
}
_FIELD = re.compile(r"field:(?P<decl>[^;]+);\s*offset:(?P<off>\d+);\s*size:(?P<size>\d+);\s*signed:(?P<signed>\d+);")
_SYMBOLIC = re.compile(r"__print_symbolic\(REC->(?P<field>\w+),(?P<table>.*?\})\s*\)")
_PAIR = re.compile(r"\{\s*(?P<value>-?(?:0x[0-9a-fA-F]+|\d+))\s*,\s*\"(?P<name>[^\"]*)\"\s*\}")


@dataclass(frozen=True)
class Field:
    name: str
    type: str  # the C declaration without the name, e.g. "void *", "__data_loc char[]"
    offset: int
    size: int
    signed: bool

    @property
    def data_loc(self) -> bool:
        """A variable-length field: a u32 (offset | length << 16) into the record."""
        return self.type.startswith("__data_loc")


@dataclass(frozen=True)
class Format:
    system: str
    name: str
    id: int
    fields: dict[str, Field] = field(default_factory=dict)
    print_fmt: str = ""

    @property
    def full(self) -> str:
        return f"{self.system}:{self.name}"

    def symbols(self, field_name: str) -> dict[int, str]:
        """The names ``__print_symbolic`` gives the values of ``field_name`` ({} if none)."""
        for m in _SYMBOLIC.finditer(self.print_fmt):
            if m.group("field") == field_name:
                return {int(p.group("value"), 0): p.group("name") for p in _PAIR.finditer(m.group("table"))}
        return {}


def parse_format(full: str, text: str) -> Format:
    """One ``format`` file's text -> Format (``full`` is system:name)."""
    system, _, name = full.partition(":")
    tp_id = 0
    fields: dict[str, Field] = {}
    print_fmt = ""
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("ID:"):
            tp_id = int(line.split(":", 1)[1])
        elif line.startswith("print fmt:"):
            print_fmt = line.split(":", 1)[1].strip()
        else:
            m = _FIELD.search(line)
            if m:
                decl = m.group("decl").strip()
                fname, ftype = _split_decl(decl)
                fields[fname] = Field(fname, ftype, int(m.group("off")), int(m.group("size")), m.group("signed") == "1")
    if not tp_id:
        raise LabError(f"the tracefs format of {full} has no ID line", exit_code=ExitStatus.FAILURE)
    return Format(system, name, tp_id, fields, print_fmt)


def _split_decl(decl: str) -> tuple[str, str]:
    """'__data_loc char[] name' -> ('name', '__data_loc char[]'); 'u8 src[4]' -> ('src', 'u8 [4]')."""
    m = re.match(r"^(?P<type>.*?)(?P<name>\w+)\s*(?P<arr>\[\d*\])?$", decl)
    if not m:
        return decl, ""
    return m.group("name"), (m.group("type").strip() + (" " + m.group("arr") if m.group("arr") else "")).strip()


def check(formats: dict[str, Format | None]) -> dict[str, Format]:
    """Every needed tracepoint and field there, or one line naming what is missing."""
    missing = [name for name in NEEDED if formats.get(name) is None]
    if missing:
        raise LabError(
            f"this kernel has no tracepoint {', '.join(missing)} (labkit trace needs {', '.join(NEEDED)}); "
            "a kernel built with CONFIG_TRACEPOINTS and networking tracepoints has them",
            exit_code=ExitStatus.FAILURE,
        )
    out: dict[str, Format] = {}
    for name, wanted in NEEDED.items():
        fmt = formats[name]
        assert fmt is not None
        absent = [f for f in wanted if f not in fmt.fields]
        if absent:
            raise LabError(
                f"tracepoint {name} has no field {', '.join(absent)} on this kernel; labkit trace cannot read it",
                exit_code=ExitStatus.FAILURE,
            )
        out[name] = fmt
    return out


def cflags(formats: dict[str, Format]) -> list[str]:
    """-DOFF_<name>_<field>=<offset> for bpf/trace_tp.c (names without the system)."""
    flags = []
    for full, wanted in NEEDED.items():
        fmt = formats[full]
        for f in wanted:
            flags.append(f"-DOFF_{fmt.name}_{f}={fmt.fields[f].offset}")
    return flags


# ---------------------------------------------------------------------- reading
def _read_dir(root: Path, names: list[str]) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for full in names:
        system, _, name = full.partition(":")
        try:
            out[full] = (root / "events" / system / name / "format").read_text()
        except OSError:
            out[full] = None
    return out


def read_formats() -> dict[str, Format]:
    """The formats of every needed tracepoint, checked (read once per process and
    $LABKIT_TRACEFS: a running kernel's formats do not change)."""
    return _formats(os.environ.get("LABKIT_TRACEFS", ""))


@cache
def _formats(root: str) -> dict[str, Format]:
    names = list(NEEDED)
    if root:
        texts = _read_dir(Path(root), names)
    elif (TRACEFS / "events").is_dir():
        texts = _read_dir(TRACEFS, names)
    else:
        texts = _read_privately(names)
    return check({n: parse_format(n, t) if t is not None else None for n, t in texts.items()})


def _read_privately(names: list[str]) -> dict[str, str | None]:
    """Mount tracefs in a child's own mount namespace, read, let the child exit."""
    argv = [sys.executable, "-m", "labkit.embedded.ebpf.tracefs", *names]
    env = dict(os.environ, PYTHONPATH=str(REPO))
    try:
        r = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=30)
    except subprocess.TimeoutExpired:
        raise LabError("reading tracepoint formats from tracefs timed out", exit_code=ExitStatus.FAILURE) from None
    if r.returncode != 0:
        why = (r.stderr.strip().splitlines() or ["no reason given"])[-1]
        raise LabError(f"cannot mount tracefs to read tracepoint formats: {why}", exit_code=ExitStatus.FAILURE)
    return json.loads(r.stdout)


CLONE_NEWNS = 0x00020000
MS_REC, MS_PRIVATE = 0x4000, 0x40000


def _child(names: list[str]) -> None:
    """In the child: a private mount namespace, tracefs in it, the formats on stdout."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(CLONE_NEWNS) != 0:
        raise SystemExit(f"unshare(CLONE_NEWNS): {os.strerror(ctypes.get_errno())}")
    # stop propagation first, or a mount below a shared mount would reach the host's table
    if libc.mount(None, b"/", None, MS_REC | MS_PRIVATE, None) != 0:
        raise SystemExit(f"making / private: {os.strerror(ctypes.get_errno())}")
    if libc.mount(b"nodev", str(TRACEFS).encode(), b"tracefs", 0, None) != 0:
        raise SystemExit(f"mount -t tracefs: {os.strerror(ctypes.get_errno())}")
    print(json.dumps(_read_dir(TRACEFS, names)))


if __name__ == "__main__":
    _child(sys.argv[1:])
