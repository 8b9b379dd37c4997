"""The lab broker: the one root process of a classroom, doing what needs privilege on the
students' behalf.

It listens on a Unix socket (/run/labkit-classroom/broker.sock, mode 0666) and knows who
asks from SO_PEERCRED. A student reaches only labs named ``<student>--<lab>`` (their
``default`` is ``alice--default`` on the machine), whose network namespaces are owned by
their own user namespace. What it does for them:

- lifecycle and reads of their labs: the embedded backend, unchanged, as root;
- ``spawn``: a command in a node or pod of their lab, as the student's uid, inside their
  user namespace (so root there, and only there), in the node's cgroup (socket LB) and in
  the student's memory/CPU cage, on the stdio descriptors the student passed;
- ``sockets``: AF_PACKET capture sockets opened in their lab's namespaces and handed back
  with SCM_RIGHTS (the student's capture engine reads them; it cannot open them itself);
- ``record``: a lesson's check result, stored under the student's name (they cannot write
  another's); the instructor (uid 0 or an instructor account) reads the class and resets
  a student's lab.

No BPF program is ever loaded from a request: the programs are labkit's own, built by the
embedded backend from ``bpf/``.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import signal
import socket
import socketserver
import struct
import subprocess
import tempfile
import termios
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from .. import spec
from ..backend import NodeRef, Settings
from ..embedded.backend import EmbeddedBackend
from ..embedded.names import OWNER_SEP, LabNames, existing_labs, lab_owner, owned_lab
from ..errors import ExitStatus, LabError
from . import progress, protocol, roster, userns
from .limits import Cage
from .protocol import ProtocolError

log = logging.getLogger("labkit.classroom.broker")
MAPS_METHODS = {"endpoints", "ct", "nat", "lb", "ipcache", "metrics", "flush", "text"}
READS = {"is_up", "settings", "problems", "nodes", "pods", "services", "resolve", "capture_points", "external_address"}
MAX_MANIFEST_FILES = 64
SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33)  # past net.core.rmem_max: the broker is root


class Caller:
    """Who is on the other end: a student of the class, or the instructor (admin)."""

    def __init__(self, uid: int, account: roster.Account | None) -> None:
        self.uid, self.account = uid, account

    @property
    def admin(self) -> bool:
        return self.uid == 0 or bool(self.account and self.account.instructor)

    @property
    def name(self) -> str:
        return self.account.name if self.account else ("root" if self.uid == 0 else f"uid {self.uid}")


class Broker:
    """The broker's decisions, independent of the socket server (tested without root)."""

    def __init__(self, classroom: roster.Classroom, *, cluster_dir: Path = spec.CLUSTER_DIR) -> None:
        self.classroom = classroom
        self.cluster_dir = cluster_dir
        self.lifecycle = threading.Lock()  # one up/down/apply at a time: they compile and load BPF
        self.running: dict[str, int] = {}  # student -> commands running now
        self.count_lock = threading.Lock()

    # who and which lab ---------------------------------------------------------------
    def caller(self, uid: int) -> Caller:
        acct = self.classroom.by_uid(uid)
        if acct is None and uid != 0:
            fresh = roster.load()
            if fresh is not None:
                self.classroom = fresh
                acct = fresh.by_uid(uid)
        if acct is None and uid != 0:
            raise LabError(
                f"uid {uid} is not in this class; ask the instructor to add you to the class list",
                exit_code=ExitStatus.FAILURE,
            )
        return Caller(uid, acct)

    def lab_of(self, who: Caller, lab: Any, student: Any = None) -> tuple[str, str]:
        """(the machine-wide lab name, the name the caller uses) for ``lab``."""
        if not isinstance(lab, str) or not lab:
            lab = "default"
        if who.admin and isinstance(student, str) and student:
            if self.classroom.by_name(student) is None:
                raise LabError(f"{student} is not in this class")
            return owned_lab(student, lab), lab
        if who.account is None or who.account.instructor:
            if lab_owner(lab) is None and who.uid != 0:
                raise LabError("an instructor reaches a student's lab with student=NAME")
            return lab, lab
        if OWNER_SEP in lab:
            raise LabError(f"lab {lab!r}: use your own lab names (e.g. default); other students' labs are not yours")
        return owned_lab(who.account.name, lab), lab

    def backend(self, full: str) -> EmbeddedBackend:
        return EmbeddedBackend(full, cluster_dir=self.cluster_dir)

    def student_labs(self, student: str) -> list[str]:
        prefix = student + OWNER_SEP
        return [lab[len(prefix) :] for lab in existing_labs() if lab.startswith(prefix)]

    def labs_table(self, student: str | None) -> Any:
        """LABS for ``student`` (their labs under the names they use), or every lab (None)."""
        table = EmbeddedBackend().labs()
        if student is None:
            return table
        prefix = student + OWNER_SEP
        table = table[table["name"].str.startswith(prefix)].reset_index(drop=True)
        for col in ("name", "companion_of", "companions"):
            table[col] = table[col].map(lambda v: _unprefix(v, prefix) if isinstance(v, str) else v)
        return table

    # operations ------------------------------------------------------------------------
    def up(self, who: Caller, full: str, short: str, settings: dict) -> str:
        student = lab_owner(full)
        assert student is not None
        be = self.backend(full)
        if not be.is_up():
            have = self.student_labs(student)
            if short not in have and len(have) >= self.classroom.limits.labs:
                raise LabError(
                    f"{student} already has {len(have)} labs ({', '.join(sorted(have))}), the class limit; "
                    "remove one with `labkit down --lab NAME`",
                    exit_code=ExitStatus.FAILURE,
                )
        self.ensure_userns(student)
        options = settings.get("options") or {}
        if not isinstance(options, dict) or not all(isinstance(v, str) for v in options.values()):
            raise LabError("options must map helm value names to strings")
        datapath = settings.get("datapath")
        with self.lifecycle:
            return be.up(Settings(datapath if isinstance(datapath, str) else None, dict(options)))

    def ensure_userns(self, student: str) -> Path:
        acct = self.classroom.by_name(student)
        if acct is None:
            raise LabError(f"{student} is not in this class")
        return userns.ensure(student, acct.uid, acct.gid)

    def down(self, full: str) -> str:
        with self.lifecycle:
            return self.backend(full).down()

    def apply(self, full: str, files: Any) -> list[str]:
        """Apply manifests the client read and sent (the broker never opens a student's paths)."""
        if not isinstance(files, list) or not files or len(files) > MAX_MANIFEST_FILES:
            raise LabError(f"give 1-{MAX_MANIFEST_FILES} manifest files")
        with tempfile.TemporaryDirectory(prefix="labkit-apply-") as tmp:
            for i, f in enumerate(files):
                if not isinstance(f, dict) or not isinstance(f.get("text"), str):
                    raise LabError("each manifest is sent as its text")
                name = Path(str(f.get("name") or f"m{i}.yaml")).name
                (Path(tmp) / f"{i:03d}-{name}").write_text(f["text"])
            with self.lifecycle:
                return self.backend(full).apply([tmp])

    def spawn_argv(self, who: Caller, full: str, target: str, argv: list[str]) -> tuple[list[str], Path]:
        """The argv that runs ``argv`` in ``target`` as the student inside their user
        namespace, and the node cgroup it belongs in."""
        student = lab_owner(full)
        assert student is not None
        be = self.backend(full)
        ref = be.resolve(target)
        names = LabNames(full)
        ns = names.node(ref.name) if isinstance(ref, NodeRef) else names.pod(ref.namespace, ref.name)
        pin = self.ensure_userns(student)
        full_argv = ["nsenter", f"--user={pin}", "--preserve-credentials", "--", "ip", "netns", "exec", ns, *argv]
        return full_argv, names.node_cgroup(ref.node)

    def open_sockets(self, full: str, points: Any) -> list[socket.socket]:
        """Capture sockets on ``points`` (names like ``client-pod:eth0``) of the lab."""
        from ..capture.sockets import open_packet_socket

        lim = self.classroom.limits
        if not isinstance(points, list) or not points or not all(isinstance(p, str) for p in points):
            raise LabError("give the capture points by name, e.g. ['client-pod:eth0']")
        if len(points) > lim.capture_sockets:
            raise LabError(f"at most {lim.capture_sockets} capture points at once in this class")
        resolved = self.backend(full).capture_points(points)
        socks: list[socket.socket] = []
        try:
            for p in resolved:
                s = open_packet_socket(p)
                s.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, lim.capture_buffer_mb << 20)  # the class's bound
                socks.append(s)
        except BaseException:
            for s in socks:
                s.close()
            raise
        return socks

    def class_status(self) -> dict:
        """Every student's labs (up or not, and whether healthy) and check results."""
        rows = []
        for acct in self.classroom.students:
            labs = []
            for short in self.student_labs(acct.name):
                be = self.backend(owned_lab(acct.name, short))
                up = be.is_up()
                labs.append(
                    {
                        "lab": short,
                        "up": up,
                        "pods": len(be.plan().pods) if up else 0,
                        "problems": be.problems() if up else [],  # a daemon or pod that died
                    }
                )
            cage = Cage(acct.name)
            rows.append(
                {
                    "student": acct.name,
                    "uid": acct.uid,
                    "labs": labs,
                    "memory_bytes": cage.memory_bytes(),
                    "checks": progress.read(acct.name),
                }
            )
        return {"students": rows, "limits": self.classroom.limits.to_dict()}

    def reset(self, student: str, lab: str) -> str:
        full = owned_lab(student, lab or "default")
        be = self.backend(full)
        settings = be.settings() if be.is_up() else Settings()
        with self.lifecycle:
            be.down()
        self.ensure_userns(student)
        with self.lifecycle:
            be.up(settings)
            be.apply([str(self.cluster_dir / "manifests")])
        return f"lab {lab or 'default'} of {student} was rebuilt"

    def count(self, student: str, delta: int) -> None:
        with self.count_lock:
            n = self.running.get(student, 0) + delta
            if delta > 0 and n > self.classroom.limits.processes:
                raise LabError(
                    f"{student} runs {n - 1} commands already, the class limit; wait for some to finish",
                    exit_code=ExitStatus.FAILURE,
                )
            self.running[student] = max(0, n)


def _unprefix(name: str, prefix: str) -> str:
    return ",".join(n[len(prefix) :] if n.startswith(prefix) else n for n in name.split(","))


def _shorten(value: Any, full: str, short: str) -> Any:
    """What the student sees: their lab's own name, never the machine-wide one."""
    if full == short:
        return value
    if isinstance(value, str):
        return value.replace(f"--lab {full}", f"--lab {short}").replace(repr(full), repr(short))
    if isinstance(value, LabError):
        return LabError(_shorten(str(value), full, short), exit_code=value.exit_code)
    if isinstance(value, list):
        return [_shorten(v, full, short) for v in value]
    return value


class Handler(socketserver.BaseRequestHandler):
    server: Server

    def handle(self) -> None:
        conn: socket.socket = self.request
        fds: list[int] = []
        full = short = ""
        try:
            got = protocol.recv_request(conn)
            if got is None:
                return
            req, fds = got
            who = self.server.broker.caller(protocol.peer_uid(conn))
            op = req.get("op")
            if op in ("class", "reset") or (op == "record" and who.admin):
                self.admin_op(conn, who, req)
                return
            if op == "record":
                assert who.account is not None
                progress.record(who.account.name, req.get("lesson"), req.get("question"), req.get("verdict"))
                protocol.send_reply(conn, {"ok": None})
                return
            if op in ("labs", "labs_table"):
                student = who.account.name if who.account and not who.admin else req.get("student")
                student = student if isinstance(student, str) else None
                if op == "labs_table":
                    labs = self.server.broker.labs_table(student)
                else:
                    labs = self.server.broker.student_labs(student) if student else existing_labs()
                protocol.send_reply(conn, {"ok": labs})
                return
            full, short = self.server.broker.lab_of(who, req.get("lab"), req.get("student"))
            if op == "spawn":
                owned, fds = fds, []  # spawn closes them, whatever happens
                self.spawn(conn, who, full, req, owned)
            elif op == "sockets":
                socks = self.server.broker.open_sockets(full, req.get("points"))
                try:
                    protocol.send_reply(conn, {"ok": len(socks)}, [s.fileno() for s in socks])
                finally:
                    for s in socks:
                        s.close()
            elif op == "stream":
                self.stream(conn, full, short, req)
            elif op == "trace":
                protocol.send_reply(conn, {"ok": self.trace(conn, full, req)})
            else:
                value = self.call(who, full, short, op, req)
                protocol.send_reply(conn, {"ok": _shorten(value, full, short)})
        except LabError as e:
            self.reply_error(conn, _shorten(e, full, short))
        except ProtocolError as e:
            self.reply_error(conn, LabError(f"bad request to the lab broker: {e}"))
        except (BrokenPipeError, ConnectionResetError):
            pass
        except Exception as e:  # a bug: say so in one line, keep serving the others
            log.exception("broker request failed")
            self.reply_error(conn, LabError(f"the lab broker failed: {type(e).__name__}: {e}", exit_code=1))
        finally:
            for fd in fds:
                with contextlib.suppress(OSError):
                    os.close(fd)

    def reply_error(self, conn: socket.socket, e: LabError) -> None:
        with contextlib.suppress(OSError):
            protocol.send_reply(conn, {"error": e})

    def admin_op(self, conn: socket.socket, who: Caller, req: dict) -> None:
        if not who.admin:
            raise LabError("only the instructor sees the class and resets labs", exit_code=ExitStatus.FAILURE)
        b = self.server.broker
        if req["op"] == "class":
            protocol.send_reply(conn, {"ok": b.class_status()})
        elif req["op"] == "reset":
            student = req.get("student")
            if not isinstance(student, str) or b.classroom.by_name(student) is None:
                raise LabError(f"{student!r} is not a student of this class")
            protocol.send_reply(conn, {"ok": b.reset(student, str(req.get("lab") or "default"))})
        else:
            raise LabError("the instructor's check results are not recorded")

    def call(self, who: Caller, full: str, short: str, op: Any, req: dict) -> Any:
        b = self.server.broker
        args = req.get("args") or {}
        if not isinstance(args, dict):
            raise LabError("args must be an object")
        if op == "up":
            return b.up(who, full, short, args)
        if op == "down":
            return b.down(full)
        if op == "apply":
            return b.apply(full, args.get("files"))
        be = b.backend(full)
        if op in READS:
            return getattr(be, op)(**_kwargs(args, {"target", "patterns"}))
        if op == "doctor":
            return be.doctor()
        if op == "companions":
            owner = lab_owner(full)
            return [_unprefix(lab, f"{owner}{OWNER_SEP}") if owner else lab for lab in be.companions()]
        if op == "add_companion":
            other, _ = b.lab_of(who, args.get("lab"), req.get("student"))
            be.add_companion(other)
            return None
        if op in ("monitor", "flows"):
            keys = (
                {"node", "from_", "to", "related_to", "seconds", "duration"}
                if op == "monitor"
                else {"node", "seconds", "duration"}
            )
            return getattr(be, op)(**_kwargs(args, keys))
        if op == "maps":
            method = args.get("method")
            if method not in MAPS_METHODS:
                raise LabError(f"maps has no method {method!r}")
            reader = be.maps(str(args.get("node")))
            return getattr(reader, method)(
                *_list(args.get("args")), **_kwargs(args.get("kwargs") or {}, {"output", "time_diff"})
            )
        raise LabError(f"the lab broker has no operation {op!r}")

    def trace(self, conn: socket.socket, full: str, req: dict) -> Any:
        """labkit trace of the student's lab: armed here, the student's ``during`` runs on
        their side until they say "done" (a byte) or go away."""
        args = req.get("args") or {}
        kwargs = _kwargs(args, {"points", "filter", "duration", "max_events"})
        points = kwargs.pop("points", None) or []
        if not isinstance(points, list) or not all(isinstance(p, str) for p in points):
            raise LabError("trace points are names, e.g. ['client-pod:eth0']")
        during = None
        if req.get("during"):

            def during() -> None:
                protocol.send_reply(conn, {"armed": True})
                conn.recv(1)  # the student's command finished (or they left)

        return self.server.broker.backend(full).trace(points, during=during, **kwargs)

    def stream(self, conn: socket.socket, full: str, short: str, req: dict) -> None:
        """monitor_lines / observe_lines: one reply per line, then the end (or the error)."""
        be = self.server.broker.backend(full)
        args = req.get("args") or {}
        what = req.get("what")
        if what == "monitor_lines":
            lines = be.monitor_lines(
                **_kwargs(args, {"node", "from_", "to", "related_to", "json", "seconds", "duration", "verbose"})
            )
        elif what == "observe_lines":
            lines = be.observe_lines(**_kwargs(args, {"node", "last", "seconds", "follow", "duration", "output"}))
        else:
            raise LabError(f"nothing to stream called {what!r}")
        for line in lines:
            protocol.send_reply(conn, {"item": line})
        protocol.send_reply(conn, {"end": True})

    def spawn(self, conn: socket.socket, who: Caller, full: str, req: dict, fds: list[int]) -> None:
        """Run a command for the student: their uid, their user namespace, their cgroups."""
        b = self.server.broker
        if who.account is None or len(fds) != 3:
            for fd in fds:
                os.close(fd)
            raise LabError("a command is run for a student, with its stdin, stdout and stderr")
        argv = req.get("argv")
        if not isinstance(argv, list) or not argv or not all(isinstance(a, str) for a in argv):
            for fd in fds:
                os.close(fd)
            raise LabError("give the command as a list of words, e.g. ['curl', '-s', 'http://webpod']")
        acct = b.classroom.by_name(lab_owner(full) or "")
        assert acct is not None
        try:
            full_argv, node_cgroup = b.spawn_argv(who, full, str(req.get("target")), argv)
            b.count(acct.name, +1)
        except BaseException:
            for fd in fds:
                os.close(fd)
            raise
        env = {str(k): str(v) for k, v in (req.get("env") or {}).items()} if isinstance(req.get("env"), dict) else {}
        env.setdefault("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
        env["HOME"] = acct.home
        env["USER"] = env["LOGNAME"] = acct.name
        asked = req.get("cwd")
        cwd: str = asked if isinstance(asked, str) else ""
        if not (cwd + "/").startswith(acct.home.rstrip("/") + "/") or not os.path.isdir(cwd):
            cwd = acct.home if os.path.isdir(acct.home) else "/"  # only ever the student's own folders
        cage = Cage(acct.name)
        # v1 (hybrid machines): the node's v2 cgroup (socket LB) and the v1 memory/cpu cage at once.
        # Pure v2 has one cgroup per process: the node's, whose hooks the lesson needs.
        procs = [str(node_cgroup / "cgroup.procs"), *(cage.procs_files() if cage.mode == "v1" else [])]
        # An interactive shell gets a terminal of its own (a pty whose master goes back to the
        # relay, like ssh): job control and Ctrl-C work, and the student's terminal stays theirs.
        master = slave = -1
        if req.get("tty") is True:
            master, slave = os.openpty()
            os.fchown(slave, acct.uid, acct.gid)
            rows, cols = req.get("rows"), req.get("cols")
            if isinstance(rows, int) and isinstance(cols, int) and 0 < rows < 1000 and 0 < cols < 1000:
                fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        stdio = (slave, slave, slave) if slave >= 0 else tuple(fds)
        try:
            proc = subprocess.Popen(
                full_argv,
                stdin=stdio[0],
                stdout=stdio[1],
                stderr=stdio[2],
                env=env,
                cwd=cwd,
                start_new_session=True,  # its own group: ended (or Ctrl-C) as one
                preexec_fn=_become(acct, procs, terminal=slave >= 0),
                close_fds=True,
            )
        except OSError as e:
            b.count(acct.name, -1)
            if master >= 0:
                os.close(master)
            raise LabError(f"cannot run {argv[0]}: {e.strerror}", exit_code=ExitStatus.FAILURE) from None
        finally:
            for fd in [*fds, *([slave] if slave >= 0 else [])]:
                os.close(fd)
        try:
            protocol.send_reply(conn, {"started": proc.pid}, [master] if master >= 0 else [])
            if master >= 0:
                os.close(master)
            self.watch(conn, proc)
        finally:
            b.count(acct.name, -1)

    def watch(self, conn: socket.socket, proc: subprocess.Popen) -> None:
        """Wait for the command; if the student's side goes away (Ctrl-C, kill), end it."""
        gone = threading.Event()

        def reader() -> None:
            try:
                while data := conn.recv(64):
                    if b"i" in data:  # the student pressed Ctrl-C in their terminal
                        with contextlib.suppress(ProcessLookupError, PermissionError):
                            os.killpg(proc.pid, signal.SIGINT)
            except OSError:
                pass
            gone.set()

        threading.Thread(target=reader, daemon=True, name="labkit-broker-watch").start()
        while proc.poll() is None:
            if gone.wait(0.05) and proc.poll() is None:
                _kill_group(proc)
                proc.wait()
                return
        with contextlib.suppress(OSError):
            protocol.send_reply(conn, {"exit": proc.returncode})


def _kill_group(proc: subprocess.Popen) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(sig)
        try:
            proc.wait(timeout=1)
            return
        except subprocess.TimeoutExpired:
            continue


def _become(acct: roster.Account, cgroup_procs: Iterable[str], *, terminal: bool = False) -> Callable[[], None]:
    """In the child, before exec: join the cgroups (as root), take its pty as the controlling
    terminal (``terminal``), then become the student for good (no supplementary groups, no
    way back)."""
    files = list(cgroup_procs)

    def run() -> None:
        pid = str(os.getpid()).encode()
        for f in files:
            fd = os.open(f, os.O_WRONLY)
            try:
                os.write(fd, pid)
            finally:
                os.close(fd)
        if terminal:  # a new session already (start_new_session): its pty becomes its terminal
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)
        os.setgroups([])
        os.setresgid(acct.gid, acct.gid, acct.gid)
        os.setresuid(acct.uid, acct.uid, acct.uid)

    return run


def _kwargs(args: dict, allowed: set[str]) -> dict:
    bad = set(args) - allowed
    if bad:
        raise LabError(f"unexpected arguments: {', '.join(sorted(bad))}")
    return {k: v for k, v in args.items() if isinstance(v, (str, int, float, bool, list, type(None)))}


def _list(v: Any) -> list:
    if v is None:
        return []
    if not isinstance(v, list) or not all(isinstance(x, (str, int, float)) for x in v):
        raise LabError("args must be a list of words")
    return v


class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, path: Path, broker: Broker) -> None:
        self.broker = broker
        path.parent.mkdir(parents=True, exist_ok=True)
        path.parent.chmod(0o755)
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        super().__init__(str(path), Handler)
        path.chmod(0o666)  # anyone may connect; SO_PEERCRED decides what they may do


def serve(path: Path | None = None, ready_fd: int | None = None) -> None:
    """Run the broker until SIGTERM (``labkit classroom up`` starts it)."""
    if os.geteuid() != 0:
        raise LabError("the lab broker runs as root; students reach it through its socket")
    classroom = roster.load()
    if classroom is None:
        raise LabError("no classroom is set up; run labkit classroom up --class FILE", exit_code=1)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s broker %(message)s")
    server = Server(path or protocol.socket_path(), Broker(classroom))
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown, daemon=True).start())
    if ready_fd is not None:
        os.write(ready_fd, b"ready\n")
        os.close(ready_fd)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()


def main(argv: list[str] | None = None) -> int:
    import argparse

    p = argparse.ArgumentParser(prog="python -m labkit.classroom.broker", description="the classroom's lab broker")
    p.add_argument("--socket", type=Path, default=None)
    p.add_argument("--ready-fd", type=int, default=None)
    a = p.parse_args(argv)
    try:
        serve(a.socket, a.ready_fd)
    except LabError as e:
        print(f"labkit broker: error: {e}", flush=True)
        return e.exit_code
    return 0


def wait_ready(path: Path, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.connect(str(path))
                return True
        except OSError:
            time.sleep(0.05)
    return False


__all__ = ["Broker", "Server", "main", "serve"]

if __name__ == "__main__":
    raise SystemExit(main())
