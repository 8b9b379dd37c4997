"""``labkit classroom up | down | status``: the whole classroom, started and removed in order.

up: accounts from the class list -> the classroom record -> each student's cage and user
namespace -> the broker -> JupyterHub. down: the reverse, and everything of every student's
labs; afterwards nothing of the classroom is left (the Linux accounts stay unless asked).
"""

from __future__ import annotations

import os
import pwd
import select
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from .. import i18n
from ..embedded.backend import EmbeddedBackend
from ..embedded.names import OWNER_SEP, existing_labs
from ..errors import ExitStatus, LabError
from . import hub, protocol, roster, userns
from .limits import Cage, Limits, mode
from .protocol import CLASSROOM_ROOT

BROKER_PID = CLASSROOM_ROOT / "broker.pid"
LOGS = CLASSROOM_ROOT / "logs"


def _need_root() -> None:
    if os.geteuid() != 0:
        raise LabError("labkit classroom up/down runs as root (it makes accounts and runs the lab broker); use sudo")


def host_problems() -> list[str]:
    """What on this machine would let a student out, or stop the classroom working."""
    problems = []
    try:
        if Path("/proc/sys/kernel/unprivileged_bpf_disabled").read_text().strip() == "0":
            problems.append(
                "kernel.unprivileged_bpf_disabled is 0: any user may load BPF socket filters; "
                "set it to 2 (sysctl -w kernel.unprivileged_bpf_disabled=2)"
            )
    except OSError:
        pass
    try:
        if Path("/proc/sys/user/max_user_namespaces").read_text().strip() == "0":
            problems.append("user namespaces are off (user.max_user_namespaces=0); set it to 1000 or more")
    except OSError:
        pass
    if mode() == "none":
        problems.append("no cgroup memory and cpu controllers (v2 or v1): the per-student limits cannot hold")
    return problems


def running() -> bool:
    return protocol.socket_path().exists() and _pid_alive(BROKER_PID)


def _pid_alive(pidfile: Path) -> bool:
    try:
        pid = int(pidfile.read_text())
        os.kill(pid, 0)
        return True
    except (OSError, ValueError):
        return False


def start_broker(timeout: float = 15) -> int:
    LOGS.mkdir(parents=True, exist_ok=True)
    r, w = os.pipe()
    with open(LOGS / "broker.log", "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "labkit.classroom.broker", "--ready-fd", str(w)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            pass_fds=(w,),
            start_new_session=True,
        )
    os.close(w)
    ready, _, _ = select.select([r], [], [], timeout)
    ok = bool(ready) and os.read(r, 16).startswith(b"ready")
    os.close(r)
    if not ok:
        proc.kill()
        raise LabError(f"the lab broker did not start; see {LOGS}/broker.log", exit_code=ExitStatus.FAILURE)
    BROKER_PID.write_text(str(proc.pid))
    return proc.pid


def stop_broker(timeout: float = 10) -> None:
    try:
        pid = int(BROKER_PID.read_text())
    except (OSError, ValueError):
        return
    end_process(pid, timeout)


def end_process(pid: int, timeout: float = 10) -> None:
    """SIGTERM, then SIGKILL after ``timeout``; a zombie counts as gone."""
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 2.0)):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if not _alive(pid):
                return
            time.sleep(0.05)


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def up(
    class_list: str | Path,
    *,
    ip: str = "127.0.0.1",
    port: int = 8000,
    limits: Limits | None = None,
    repo: Path | None = None,
    lang: str = "en",
) -> tuple[roster.Classroom, str]:
    """Bring the classroom up; return it and the hub's URL."""
    members = roster.load_class_list(class_list)  # bad input: nothing changed yet
    lang = i18n.check_language(lang)
    limits = (limits or Limits()).check()
    if not 1 <= port <= 65000:
        raise LabError(f"port {port} is out of range")
    _need_root()
    if running():
        raise LabError("a classroom is already up on this machine; see labkit classroom status, or down first")
    problems = host_problems()
    if problems:
        raise LabError(problems[0], exit_code=ExitStatus.FAILURE)
    repo = (repo or Path(__file__).resolve().parents[2]).resolve()
    if hub.proxy_command(repo) is None:
        raise LabError("configurable-http-proxy is not installed; run make classroom (or make setup)", exit_code=1)
    accounts = [roster.ensure_account(m) for m in members]
    classroom = roster.Classroom(accounts, limits, ip, port, str(repo), lang)
    CLASSROOM_ROOT.mkdir(parents=True, exist_ok=True)
    CLASSROOM_ROOT.chmod(0o755)
    classroom.save()
    try:
        for a in accounts:
            Cage(a.name).create(limits)
            if not a.instructor:
                userns.ensure(a.name, a.uid, a.gid)
        hub.expose_kit(repo)
        start_broker()
        hub.start(classroom)
    except BaseException:
        down()
        raise
    return classroom, hub.hub_url(classroom)


def student_labs() -> list[str]:
    return [lab for lab in existing_labs() if OWNER_SEP in lab]


def down(*, remove_users: bool = False) -> list[str]:
    """Remove the classroom: hub, servers, every student lab, broker, namespaces, cages.
    Returns what is still left (empty when clean)."""
    _need_root()
    classroom = roster.load()
    hub.stop()
    accounts = classroom.accounts if classroom else []
    for a in accounts:
        _kill_user(a.uid)
    for lab in student_labs():
        EmbeddedBackend(lab).down()
    stop_broker()
    hub.hide_kit()
    for a in accounts:
        userns.remove(a.name)
        Cage(a.name).remove()
        if remove_users:
            roster.remove_account(a.name)
    if CLASSROOM_ROOT.exists():
        for pin in (CLASSROOM_ROOT / "userns").glob("*") if (CLASSROOM_ROOT / "userns").exists() else []:
            userns.remove(pin.name)
        shutil.rmtree(CLASSROOM_ROOT, ignore_errors=True)
    return leftovers(accounts)


def _kill_user(uid: int) -> None:
    """End every process of a student (their server, kernels, commands), by PID."""
    for _ in range(3):
        pids = []
        for d in os.listdir("/proc"):
            if d.isdigit():
                try:
                    if os.stat(f"/proc/{d}").st_uid == uid:
                        pids.append(int(d))
                except OSError:
                    pass
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.2)


def leftovers(accounts: list[roster.Account]) -> list[str]:
    found = [f"lab {lab}" for lab in student_labs()]
    if CLASSROOM_ROOT.exists():
        found.append(str(CLASSROOM_ROOT))
    for a in accounts:
        found += [str(d) for d in Cage(a.name).dirs if d.exists()]
        if any(os.stat(f"/proc/{d}").st_uid == a.uid for d in os.listdir("/proc") if d.isdigit() and _exists(d)):
            found.append(f"processes of {a.name}")
    mounts = Path("/proc/self/mounts").read_text()
    if str(CLASSROOM_ROOT) in mounts:
        found.append(f"mounts under {CLASSROOM_ROOT}")
    return found


def _exists(pid: str) -> bool:
    try:
        os.stat(f"/proc/{pid}")
        return True
    except OSError:
        return False


def token(student: str, hours: float = 12) -> str:
    """A hub token for ``student`` (for the REST API, or a student who logs in with a token
    instead of a password: ``/hub/login`` then the token as ``?token=``)."""
    import json
    import urllib.request

    classroom = roster.load()
    if classroom is None or not running():
        raise LabError("no classroom is up; run labkit classroom up --class FILE")
    if classroom.by_name(student) is None:
        raise LabError(f"{student} is not in this class")
    req = urllib.request.Request(
        f"http://127.0.0.1:{classroom.port}/hub/api/users/{student}/tokens",
        method="POST",
        data=json.dumps({"note": "labkit classroom token", "expires_in": int(hours * 3600)}).encode(),
        headers={"Authorization": f"token {hub.api_token()}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.loads(r.read())["token"]
    except OSError as e:
        raise LabError(f"the hub did not make a token: {e}", exit_code=ExitStatus.FAILURE) from None


def status() -> dict:
    """The classroom as `labkit classroom status` prints it."""
    classroom = roster.load()
    if classroom is None:
        return {"up": False}
    out: dict = {
        "up": running(),
        "url": hub.hub_url(classroom),
        "limits": classroom.limits.to_dict(),
        "cgroups": mode(),
        "students": [],
    }
    for a in classroom.accounts:
        prefix = a.name + OWNER_SEP
        labs = [lab[len(prefix) :] for lab in student_labs() if lab.startswith(prefix)]
        out["students"].append(
            {
                "name": a.name,
                "instructor": a.instructor,
                "uid": a.uid,
                "labs": labs,
                "memory_mb": round(Cage(a.name).memory_bytes() / 2**20, 1),
                "home": a.home if pwd.getpwnam(a.name) else "",
            }
        )
    return out
