"""labkit trace: follow packets through the kernel of a running lab (pwru's job, without kprobes).

    with Session(lab_namespaces(names, plan), ...) as s:     # programs loaded, hooks on
        run the command
    s.records                                                 # raw events, for tracepath.py

What is loaded (the C is bpf/trace_tc.c and bpf/trace_tp.c, compiled by bcc into cached
templates like the datapath's, see build.py):

- a tc program at tcx ingress and egress of every interface of every namespace of the lab,
  put first in line (before the datapath's own programs); it matches the filter on the
  packet bytes and records the skb's address;
- one program per tracepoint (tracefs.NEEDED), attached with perf_event_open; they emit
  only events of recorded skbs.

Everything is held by file descriptors of this process and nothing is pinned: when the
session ends, or the process dies however it dies, the kernel drops the links, the
perf events, the programs and the maps. No program runs in the host's namespaces: only
the tracepoints are global, and they let through only the skbs our tc programs picked
up inside the lab.
"""

from __future__ import annotations

import errno
import functools
import os
import socket
import struct
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import pandas as pd

from ... import netns, tables
from ...errors import ExitStatus, LabError
from ...netns import NetNS
from ...plan import Plan
from .. import exthost
from ..names import LabNames
from . import bpfsys, build, kstruct, skbfilter, tracefs, tracepath
from . import events as ev
from .build import Template
from .ringbuf import RingBuffer, poll_all, wait_drained
from .tracepath import LabNetns, Mark

T = TypeVar("T")
NETNS_PLACEHOLDER = 0x6C6B746E65746E73  # LKT_NETNS_PLACEHOLDER in bpf/trace_tc.c
PROG_TYPES = {"sched_cls": bpfsys.PROG_SCHED_CLS, "tracepoint": bpfsys.PROG_TRACEPOINT}
DIRECTIONS = (("ingress", bpfsys.TCX_INGRESS), ("egress", bpfsys.TCX_EGRESS))
# devices no packet of the lab crosses (the datapath only keeps the router IP on cilium_host):
# hooking them would only cost time (each tcx link waits for RCU, under rtnl)
UNHOOKED = ("lo", "cilium_host", "cilium_net")
F_FLOWS = 1  # LKT_F_FLOWS in bpf/lib/skbtrace.h
CONFIG = struct.Struct("=IIQQQQ")  # struct lkt_config
WHERE = struct.Struct("=QII")  # struct lkt_where
MAX_EVENTS = 1_000_000
MAX_SECONDS = 300.0
DEFAULT_EVENTS = 20_000
DEFAULT_SECONDS = 10.0


def lab_namespaces(names: LabNames, plan: Plan) -> list[LabNetns]:
    """Every namespace of the lab, numbered, with its interfaces (read now)."""
    wanted = [LabNetns(names.kind_net, "kind-network", "")]
    wanted += [LabNetns(names.node(n.name), n.name, n.name) for n in plan.nodes]
    wanted += [LabNetns(names.pod(p.namespace, p.name), p.name, p.node) for p in plan.pods]
    wanted.append(LabNetns(exthost.netns_name(names), "external", ""))
    existing = {n.name for n in netns.existing()}
    out: list[LabNetns] = []
    for ns in wanted:
        if ns.netns not in existing:
            continue
        ns.number = len(out) + 1
        out.append(ns)
    found = _parallel([functools.partial(NetNS(ns.netns).call, socket.if_nameindex, what=ns.label) for ns in out])
    for ns, links in zip(out, found):
        ns.links = {int(i): name for i, name in links}
    return out


def _parallel(calls: list[Callable[[], T]], done: Callable[[T], None] | None = None) -> list[T]:
    """Run the calls at once. Attaching or detaching a tcx link or a tracepoint waits for
    an RCU grace period; run together, the waits overlap as far as the kernel's locks let
    them (rtnl for tcx, the trace event lock for tracepoints). ``done`` gets every result,
    even when another call failed (then that error is raised)."""
    if not calls:
        return []
    with ThreadPoolExecutor(min(64, len(calls))) as pool:
        futures = [pool.submit(c) for c in calls]
    out, error = [], None
    for f in futures:
        try:
            value = f.result()
        except BaseException as e:
            error = error or e
            continue
        out.append(value)
        if done is not None:
            done(value)
    if error is not None:
        raise error
    return out


def patch_netns(insns: bytes, number: int) -> bytes:
    """The tc program's bytecode with LKT_NETNS_PLACEHOLDER (a 64-bit immediate) set to
    ``number``; a program without it is a build error."""
    out = bytearray(insns)
    lo, hi = NETNS_PLACEHOLDER & 0xFFFFFFFF, NETNS_PLACEHOLDER >> 32
    found = 0
    for i in range(0, len(out) - 15, 8):
        if out[i] == 0x18 and (out[i + 1] >> 4) == 0:  # ld_imm64 of a plain constant
            a, b = struct.unpack_from("<I", out, i + 4)[0], struct.unpack_from("<I", out, i + 12)[0]
            if (a, b) == (lo, hi):
                struct.pack_into("<I", out, i + 4, number)
                struct.pack_into("<I", out, i + 12, 0)
                found += 1
    if not found:
        raise LabError("bpf/trace_tc.c lost its namespace placeholder; rebuild it", exit_code=ExitStatus.FAILURE)
    return bytes(out)


def _datapath_names(ids: list[int]) -> str:
    """The datapath programs (by their full function names) among program ids (another
    trace's programs, running at the same time, are not the datapath's)."""
    full = {fn[:15]: fn for progs in build.PROGRAMS.values() for fn, _, _ in progs}
    out = []
    for pid in ids:
        try:
            fd = bpfsys.prog_fd_by_id(pid)
        except OSError:
            continue
        try:
            name = bpfsys.prog_id_name(fd)[1]
        finally:
            os.close(fd)
        if not name.startswith("lkt_"):
            out.append(full.get(name, name))
    return ",".join(out)


@dataclass(frozen=True)
class Options:
    """What to trace and its bounds (checked before anything is loaded)."""

    filter: skbfilter.Node | None
    pickup: tuple[tuple[str, str], ...] = ()  # (netns, ifname) where packets are picked up; () = anywhere
    seconds: float = DEFAULT_SECONDS
    max_events: int = DEFAULT_EVENTS


def check_bounds(seconds: float | None, max_events: int | None) -> tuple[float, int]:
    s = DEFAULT_SECONDS if seconds is None else seconds
    n = DEFAULT_EVENTS if max_events is None else max_events
    if not isinstance(s, (int, float)) or not (0 < s <= MAX_SECONDS):
        raise LabError(f"a trace lasts more than 0 and at most {MAX_SECONDS:.0f} seconds, got {seconds!r}")
    if not isinstance(n, int) or isinstance(n, bool) or not (1 <= n <= MAX_EVENTS):
        raise LabError(f"max events must be between 1 and {MAX_EVENTS}, got {max_events!r}")
    return float(s), n


def templates(node: skbfilter.Node | None, formats: dict[str, tracefs.Format]) -> dict[str, Template]:
    """The tracer's two templates for this kernel and filter (cached after the first compile)."""
    offsets = kstruct.offsets().cflags()
    return {
        "trace_tc.c": build.template("trace_tc.c", offsets + skbfilter.cflags(node)),
        "trace_tp.c": build.template("trace_tp.c", offsets + tracefs.cflags(formats)),
    }


class Session:
    """The tracer attached to a lab, for the length of a ``with`` block."""

    def __init__(
        self,
        namespaces: list[LabNetns],
        templates: dict[str, Template],
        formats: dict[str, tracefs.Format],
        options: Options,
    ) -> None:
        self.namespaces, self.templates, self.formats, self.options = namespaces, templates, formats, options
        self.records: list[bytes] = []
        self.counters = {"emitted": 0, "lost": 0, "over": 0}
        self.prog_ids: list[int] = []
        self.clock_offset_ns = 0  # wall clock minus the kernel's monotonic clock
        self._maps: dict[str, int] = {}
        self._progs: dict[tuple[str, int], int] = {}  # (function, namespace number or 0) -> fd
        self._links: list[int] = []  # tcx links
        self._perf: list[int] = []  # tracepoint perf events
        self._ring: RingBuffer | None = None
        self._stop = threading.Event()
        self._reader: threading.Thread | None = None

    # ---------------------------------------------------------------- lifecycle
    def __enter__(self) -> Session:
        try:
            self._open()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _open(self) -> None:
        self.clock_offset_ns = time.time_ns() - time.monotonic_ns()
        self._create_maps()
        self._configure()
        self._load()
        self._ring = RingBuffer(
            self._maps["lkt_events"], bpfsys.MapInfo(self._maps["lkt_events"]).max_entries, self.records.append
        )
        self._reader = threading.Thread(target=self._read, name="labkit-trace-reader", daemon=True)
        self._reader.start()
        # tracepoints and tc hooks at once (both wait for RCU, under different locks)
        perf = [functools.partial(self._tracepoint, name, fmt) for name, fmt in self.formats.items()]
        hooks = [
            functools.partial(NetNS(ns.netns).call, functools.partial(self._hook, ns, idx, ifname, d, a), what=ns.label)
            for ns in self.namespaces
            for idx, ifname in ns.links.items()
            if ifname not in UNHOOKED
            for d, a in DIRECTIONS
        ]
        _parallel([*perf, *hooks], self._keep)

    def _tracepoint(self, name: str, fmt: tracefs.Format) -> tuple[str, int]:
        try:
            return "perf", bpfsys.tracepoint_attach(fmt.id, self._progs[(f"lkt_tp_{fmt.name}", 0)])
        except OSError as e:
            raise LabError(f"cannot attach to tracepoint {name}: {e.strerror}", exit_code=ExitStatus.FAILURE) from None

    def _keep(self, kind_fd: tuple[str, int]) -> None:
        kind, fd = kind_fd
        if fd >= 0:
            (self._perf if kind == "perf" else self._links).append(fd)

    def _create_maps(self) -> None:
        for t in self.templates.values():
            for name, m in t.maps.items():
                if name not in self._maps:
                    self._maps[name] = bpfsys.map_create(
                        m["type"], m["key_size"], m["value_size"], m["max_entries"], m["flags"], name
                    )

    def _configure(self) -> None:
        o = self.options
        flags = F_FLOWS if o.pickup else 0
        bpfsys.update(self._maps["lkt_config"], struct.pack("=I", 0), CONFIG.pack(flags, 0, o.max_events, 0, 0, 0))
        by_name = {ns.netns: ns for ns in self.namespaces}
        for ns_name, ifname in o.pickup:
            ns = by_name.get(ns_name)
            idx = next((i for i, n in (ns.links.items() if ns else ()) if n == ifname), None)
            if ns is None or idx is None:
                raise LabError(f"no interface {ifname} in {ns_name} to trace from", exit_code=ExitStatus.FAILURE)
            bpfsys.update(self._maps["lkt_pickup"], WHERE.pack(ns.number, idx, 0), b"\1")

    def _load(self) -> None:
        """The tracepoint programs once; the tc programs once per namespace (its number
        patched in)."""
        for src, t in self.templates.items():
            for fn, p in t.progs.items():
                insns = bytearray(p["insns"])
                for idx, name in p["relocs"]:
                    struct.pack_into("<i", insns, idx * 8 + 4, self._maps[name])
                copies = [ns.number for ns in self.namespaces] if p["type"] == "sched_cls" else [0]
                for number in copies:
                    code = patch_netns(bytes(insns), number) if number else bytes(insns)
                    try:
                        fd = bpfsys.prog_load(code, PROG_TYPES[p["type"]], fn[:15])
                    except bpfsys.VerifierError as e:
                        tail = " | ".join(e.log.strip().splitlines()[-8:])
                        raise LabError(
                            f"the verifier rejected {fn} (bpf/{src}): {e.err}; verifier log (end): {tail}",
                            exit_code=ExitStatus.FAILURE,
                        ) from None
                    self._progs[(fn, number)] = fd
                    self.prog_ids.append(bpfsys.prog_id_name(fd)[0])

    def _hook(self, ns: LabNetns, idx: int, ifname: str, direction: str, attach: int) -> tuple[str, int]:
        """In ``ns``'s namespace: note the datapath's programs at this hook, then put ours in
        front of them; the link's fd (-1 if the interface went away meanwhile)."""
        ns.hooks[(ifname, direction)] = _datapath_names(bpfsys.tcx_prog_ids(idx, attach))
        try:
            return "link", bpfsys.link_create_first(self._progs[(f"lkt_tc_{direction}", ns.number)], idx, attach)
        except OSError as e:
            if e.errno == errno.ENODEV:
                return "link", -1
            if e.errno in (errno.EINVAL, errno.EOPNOTSUPP, 524):
                raise LabError(
                    "labkit trace needs tcx (Linux 6.6 or later) to hook the lab's interfaces",
                    exit_code=ExitStatus.FAILURE,
                ) from None
            raise

    def _read(self) -> None:
        assert self._ring is not None
        while not self._stop.is_set():
            poll_all([self._ring], 100)

    def close(self) -> None:
        """Detach and free everything (idempotent); the events read stay in ``records``."""
        fds, self._links, self._perf = [*self._links, *self._perf], [], []
        _parallel([functools.partial(os.close, fd) for fd in fds])
        self._stop.set()
        if self._reader is not None:
            self._reader.join()
            self._reader = None
        if self._ring is not None:
            self._ring.drain()
            self._ring.close()
            self._ring = None
        if "lkt_config" in self._maps:
            raw = bpfsys.lookup(self._maps["lkt_config"], struct.pack("=I", 0), CONFIG.size)
            if raw:
                _, _, _, emitted, lost, over = CONFIG.unpack(raw)
                self.counters = {"emitted": emitted, "lost": lost, "over": over}
        for fd in [*self._progs.values(), *self._maps.values()]:
            os.close(fd)
        self._progs, self._maps = {}, {}


def run(
    names: LabNames,
    plan: Plan,
    options: Options,
    during: Callable[[], object] | None,
    settle: float = 0.3,
) -> tuple[Session, list[LabNetns]]:
    """Trace while ``during`` runs (then ``settle`` seconds more, for the last ACKs), or
    for ``options.seconds``; the session is closed when this returns."""
    formats = tracefs.read_formats()
    tmpl = templates(options.filter, formats)
    spaces = lab_namespaces(names, plan)
    session = Session(spaces, tmpl, formats, options)
    deadline = time.monotonic() + options.seconds
    with session:
        if during is not None:
            during()
            time.sleep(max(0.0, min(settle, deadline - time.monotonic())))
        else:
            while time.monotonic() < deadline and len(session.records) < options.max_events:
                time.sleep(0.05)
    return session, spaces


def datapath_marks(names: LabNames, spaces: list[LabNetns], since_ns: int) -> list[Mark]:
    """The nodes' datapath trace and drop events since ``since_ns`` (wall clock), as marks."""
    events_dir = names.state_dir / "events"
    marks: list[Mark] = []
    for ns in spaces:
        if ns.label != ns.node or not (events_dir / f"{ns.node}.bin").exists():
            continue
        try:
            fd = bpfsys.obj_get(str(names.bpffs / ns.node / "cilium_events"))
        except LabError:
            continue
        try:
            wait_drained(fd)  # the agent has moved every event so far into its file
        finally:
            os.close(fd)
        for t, raw in ev.read_records(events_dir, ns.node, since_ns):
            decoded = ev.decode([(t, raw)], ns.node, ns.links)
            if not decoded or len(raw) < ev.NOTIFY.itemsize:
                continue
            n = np.frombuffer(raw[: ev.NOTIFY.itemsize], dtype=ev.NOTIFY)[0]
            key = tracepath.frame_key(bytes(n["data"])[: int(n["len_cap"])])
            if key is None:
                continue
            verdict, reason = tracepath.verdict_text(decoded[0], ns.links)
            marks.append(Mark(ns.node, t / 1e9, key, verdict, reason))
    return marks


def trace(
    names: LabNames,
    plan: Plan,
    options: Options,
    during: Callable[[], object] | None,
) -> pd.DataFrame:
    """TRACE: the events of the packets ``options`` selects, while ``during`` runs."""
    since = time.time_ns()
    session, spaces = run(names, plan, options, during)
    events = tracepath.decode(session.records)
    marks = datapath_marks(names, spaces, since - 1_000_000_000)
    rows = tracepath.rows(events, spaces, session.formats, session.clock_offset_ns, marks)
    return tables.TRACE.frame(rows)
