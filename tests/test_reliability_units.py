"""The pieces that keep labs whole, without a lab: the lab lock, the daemon registry, the
undo journal, the capture store, the compile cache's checks (unit)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from labkit.capture import craft
from labkit.capture.store import FrameStore
from labkit.embedded import names as names_mod
from labkit.embedded import processes, state, undo
from labkit.embedded.ebpf import build
from labkit.embedded.names import LabNames
from labkit.errors import LabError


@pytest.fixture
def names(tmp_path, monkeypatch) -> LabNames:
    monkeypatch.setattr(names_mod, "STATE_ROOT", tmp_path / "run")
    monkeypatch.setattr(names_mod, "LOCK_ROOT", tmp_path / "lock")
    return LabNames("unit1")


HOLD = """
import sys, time
from labkit.embedded import names as n, state
n.LOCK_ROOT = __import__("pathlib").Path(sys.argv[1])
with state.locked(n.LabNames("unit1"), "up") as lock:
    print("held", flush=True)
    time.sleep(float(sys.argv[2]))
    if sys.argv[3] == "discard":
        lock.discard()
"""


def _holder(names: LabNames, seconds: float, discard: bool = False) -> subprocess.Popen:
    p = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(names.lock.parent), str(seconds), "discard" if discard else "keep"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert p.stdout.readline().strip() == "held"
    return p


def test_the_lock_excludes_waits_saying_so_and_times_out(names):
    p = _holder(names, 30)
    try:
        busy = r"lab 'unit1' is busy \(labkit up runs as PID \d+\); down waits"
        with (
            pytest.warns(UserWarning, match=busy),
            pytest.raises(LabError, match="still busy after 0 s") as e,
            state.locked(names, "down", timeout=0.3),
        ):
            pass
        assert e.value.exit_code == 1
    finally:
        p.kill()
        p.wait()
    with state.locked(names, "down", timeout=1):  # the holder died: the kernel released it
        pass


def test_a_lock_removed_by_its_holder_is_taken_afresh(names):
    p = _holder(names, 0.5, discard=True)
    with pytest.warns(UserWarning, match="busy"), state.locked(names, "apply", timeout=10) as lock:
        assert names.lock.exists()  # a new file, locked by us
        assert state._same_file(lock.fd, names.lock)
    p.wait()


def test_state_files_of_older_versions_load(names):
    from labkit import plan as planning
    from labkit import spec

    st = state.LabState("unit1", "up", "ebpf", {}, planning.initial(spec.load_cluster()))
    d = json.loads(st.to_json())
    d["pids"] = {"native/x": 1}  # an older field
    d.pop("applied")
    assert state.LabState.from_json(json.dumps(d)).applied == 0


READY = "import os, sys, time; os.write(int(sys.argv[1]), b'ready'); time.sleep(600)"


def test_daemons_are_registered_watched_and_restarted(names):
    d = processes.Daemon(
        "echo",
        "the test daemon",
        [sys.executable, "-c", READY, processes.READY_FD],
        str(names.state_dir / "logs" / "echo.log"),
    )
    (started,) = processes.start_daemons(names, [d])
    try:
        assert processes.alive(started) and processes.dead_daemons(names) == []
        os.kill(started.pid, signal.SIGKILL)
        os.waitpid(started.pid, 0)
        (dead,) = processes.dead_daemons(names)
        assert dead.name == "echo"
        again = processes.restart(names, dead)
        assert again.pid != started.pid and processes.alive(again)
        assert [x.pid for x in processes.daemons(names)] == [again.pid]
        processes.stop(names, again)
        assert processes.daemons(names) == [] and not processes.alive(again)
    finally:
        for x in (started,):
            try:
                os.kill(x.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def test_a_daemon_that_never_says_ready_is_one_line_and_stopped(names):
    d = processes.Daemon(
        "mute",
        "the mute daemon",
        [sys.executable, "-c", "import time; time.sleep(60)"],
        str(names.state_dir / "logs" / "mute.log"),
        ready_timeout=0.5,
    )
    with pytest.raises(LabError, match=r"the mute daemon did not start; see .*mute.log"):
        processes.start_daemons(names, [d])
    assert processes.daemons(names) == []


def test_pid_reuse_is_not_taken_for_the_daemon():
    me = processes.Daemon("x", "x", [], "", pid=os.getpid(), started=processes._start_time(os.getpid()))
    assert processes.alive(me)
    assert not processes.alive(processes.Daemon("x", "x", [], "", pid=os.getpid(), started=1))


def test_the_undo_journal_rolls_back_paths_files_and_entries(names, tmp_path):
    work = tmp_path / "w"
    (work / "dir").mkdir(parents=True)
    (work / "dir" / "old").write_text("old")
    kept = work / "kept.txt"
    kept.write_text("before")
    j = undo.begin(names, 1)
    j.created(work / "new")
    (work / "new").mkdir()
    j.rewrites(kept)
    kept.write_text("after")
    j.rewrites(work / "fresh.txt")
    (work / "fresh.txt").write_text("x")
    j.new_entries(work / "dir")
    (work / "dir" / "pin").write_text("p")
    j.rollback()
    assert sorted(p.name for p in work.iterdir()) == ["dir", "kept.txt"]
    assert kept.read_text() == "before" and sorted(p.name for p in (work / "dir").iterdir()) == ["old"]
    assert not names.journal.exists()


def test_a_committed_journal_is_dropped_an_uncommitted_one_undone(names, tmp_path):
    j = undo.begin(names, 3)
    j.created(tmp_path / "a")
    (tmp_path / "a").write_text("1")
    assert undo.recover(names, committed=3) is False and (tmp_path / "a").exists()
    j = undo.begin(names, 4)
    j.created(tmp_path / "a")
    with open(names.journal, "a") as f:
        f.write('{"kind": "path", "pa')  # the last line, cut short by a kill
    with pytest.warns(UserWarning, match="undid what an interrupted apply had added"):
        assert undo.recover(names, committed=3) is True
    assert not (tmp_path / "a").exists() and not names.journal.exists()


def _frames(n: int) -> list[bytes]:
    return [
        craft.ip_frame(
            "02:00:00:00:00:01", "02:00:00:00:00:02", craft.ipv4("10.0.0.1", "10.0.0.2", 1, craft.icmp_echo(1, i))
        )
        for i in range(n)
    ]


def test_the_capture_store_spills_to_pcapng_and_reads_back_the_same():
    pts = ["a:eth0", "b:eth0"]
    mem, disk = FrameStore(pts, 262144, spill_bytes=1 << 30), FrameStore(pts, 262144, spill_bytes=500)
    for i, f in enumerate(_frames(40)):
        for s in (mem, disk):
            s.add(f, len(f) + 4, 1_700_000_000_000_000_000 + i * 1000, i % 2, 1 + i % 2)
    assert mem.path is None and disk.path is not None and disk.path.exists()
    a, b = mem.frames(), disk.frames()
    assert len(a) == len(b) == 40 and a.points == b.points == pts
    for col in ("caplen", "origlen", "time_ns", "point", "direction"):
        assert (getattr(a, col) == getattr(b, col)).all(), col
    assert [a.frame(i) for i in range(40)] == [b.frame(i) for i in range(40)]
    spill = disk.path.parent
    disk.discard()
    assert not spill.exists()


def _entry(tmp_path: Path) -> tuple[Path, dict]:
    key = build.cache_key("bpf_lxc.c", "int x;", ["-DX=1"], {"bcc": "0.1", "kernel": "k", "headers": ""})
    insns = bytes.fromhex("b700000000000000" + "9500000000000000")
    payload = {
        "maps": {},
        "progs": {
            "f": {
                "type": "sched_cls",
                "attach": "",
                "insns": __import__("base64").b64encode(insns).decode(),
                "relocs": [],
            }
        },
    }
    path = build.private_dir(tmp_path / "bpf") / build._entry_name(key)
    entry = {"format": build.FORMAT, "key": key, "sha256": build._content_digest(payload), "payload": payload}
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(json.dumps(entry))
    return path, key


def test_compile_cache_entries_are_checked(tmp_path):
    path, key = _entry(tmp_path)
    t, why = build._read_checked(path, key)
    assert t is not None and t.progs["f"]["insns"][:1] == b"\xb7" and why == ""
    assert build._read_checked(path, {**key, "flags": "[]"})[1] == "was made from other sources, flags or compiler"
    d = json.loads(path.read_text())
    d["payload"]["progs"]["f"]["insns"] = (
        __import__("base64").b64encode(bytes.fromhex("b7000000020000009500000000000000")).decode()
    )
    path.write_text(json.dumps(d))
    assert "SHA-256 does not match" in build._read_checked(path, key)[1]
    path.write_text("{oops")
    assert "cannot be read" in build._read_checked(path, key)[1]
    os.chmod(path, 0o644)
    assert "not a private file" in build._read_checked(path, key)[1]


def test_compile_cache_dir_is_private_and_of_this_user(tmp_path):
    d = tmp_path / "c"
    d.mkdir(mode=0o755)
    assert oct(build.private_dir(d).stat().st_mode & 0o777) == "0o700"
    if os.geteuid() == 0:
        os.chown(d, 65534, 65534)
        with pytest.raises(LabError, match="is not a directory of uid 0"):
            build.private_dir(d)


@pytest.mark.filterwarnings("ignore::labkit.errors.LabWarning")
def test_lock_waits_are_short_when_free(names):
    t0 = time.monotonic()
    done = []

    def take():
        with state.locked(names, "up"):
            done.append(1)

    threads = [threading.Thread(target=take) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(done) == 4 and time.monotonic() - t0 < 5
