"""JupyterHub for the class: its configuration, the spawner, and starting/stopping it.

The hub (PyPI ``jupyterhub``, with the npm ``configurable-http-proxy``) runs as root so it can
start each student's notebook server as that student (``LocalProcessSpawner``), never as
root: ``ClassroomSpawner`` puts the server in the student's memory/CPU cage first, copies the
labs into the student's home (their own copy) and serves ``~/labs``. Students log in with
a password they choose on first use (``FirstUseAuthenticator``) or with a token; the
instructor is a hub admin and sees the class page (a hub service, ``instructor.py``). Idle
servers are culled by ``jupyterhub-idle-culler``. Everything lives in
/run/labkit-classroom/hub and goes at ``labkit classroom down``.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from ..errors import ExitStatus, LabError
from ..labsettings import LOCALES, TRANSLATION
from . import roster
from .limits import Cage
from .protocol import CLASSROOM_ROOT

HUB_DIR = CLASSROOM_ROOT / "hub"
KIT = CLASSROOM_ROOT / "kit"  # the checkout, bind-mounted read-only where every student can reach it
BIN = CLASSROOM_ROOT / "bin"  # `labkit` for students' terminals
CONFIG = Path(__file__).resolve().parent / "hub_config.py"
INSTRUCTOR_PORT_OFFSET = 1  # the class page listens on the hub's internal port + 1
IDLE_TIMEOUT = 3600  # seconds without activity before a student's server is stopped


def venv_bin() -> Path:
    return Path(sys.executable).parent


def proxy_command(repo: Path) -> Path | None:
    """configurable-http-proxy installed by setup (npm) into the venv, or on PATH."""
    for p in (repo / ".venv" / "share" / "labkit-chp" / "node_modules" / ".bin" / "configurable-http-proxy",):
        if p.exists():
            return p
    found = shutil.which("configurable-http-proxy")
    return Path(found) if found else None


def api_token() -> str:
    """The hub's admin token for labkit (root-only file): REST calls of `labkit classroom`."""
    path = HUB_DIR / "labkit-api-token"
    if not path.exists():
        HUB_DIR.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_hex(32))
        path.chmod(0o600)
    return path.read_text().strip()


def settings(classroom: roster.Classroom) -> dict[str, Any]:
    """Everything the config file needs, as plain values (tested without a hub)."""
    repo = Path(classroom.repo)
    chp = proxy_command(repo)
    instructors = [a.name for a in classroom.accounts if a.instructor]
    return {
        "ip": classroom.ip,
        "port": classroom.port,
        "hub_port": classroom.port + 81,
        "service_port": classroom.port + 82,
        "users": [a.name for a in classroom.accounts],
        "admins": instructors,
        "dir": str(HUB_DIR),
        "proxy": str(chp) if chp else "configurable-http-proxy",
        "python": sys.executable,
        "student_python": str(KIT / ".venv" / "bin" / "python"),
        "kit": str(KIT),
        "labs": str(repo / "labs"),
        "path": f"{BIN}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "api_token": api_token(),
        "idle_timeout": IDLE_TIMEOUT,
        "lang": classroom.lang,
        # where a student lands: JupyterLab, or the first lesson of a translated edition
        "default_url": "/lab" if classroom.lang == "en" else f"/lab/tree/{classroom.lang}/01-install.ipynb",
        "memory_mb": classroom.limits.memory_mb,
        "cpus": classroom.limits.cpus,
    }


def expose_kit(repo: Path) -> None:
    """Bind-mount the checkout read-only at /run/labkit-classroom/kit: students reach it
    there whatever the permissions of the folders above the checkout, and cannot change it.
    Their Python is the kit's .venv with PYTHONPATH on the kit (the editable install points
    at the original path), and `labkit` is a small wrapper in /run/labkit-classroom/bin."""
    KIT.mkdir(parents=True, exist_ok=True)
    if not _mounted(KIT):
        for argv in (["mount", "--bind", str(repo), str(KIT)], ["mount", "-o", "remount,bind,ro", str(KIT)]):
            r = subprocess.run(argv, capture_output=True, text=True)
            if r.returncode != 0:
                raise LabError(f"{' '.join(argv)} failed: {r.stderr.strip()}", exit_code=ExitStatus.FAILURE)
    BIN.mkdir(parents=True, exist_ok=True)
    wrapper = BIN / "labkit"
    wrapper.write_text(f'#!/bin/sh\nexec "{KIT}/.venv/bin/python" -m labkit.cli "$@"\n')
    wrapper.chmod(0o755)


def hide_kit() -> None:
    if _mounted(KIT):
        subprocess.run(["umount", "-l", str(KIT)], capture_output=True)


def _mounted(p: Path) -> bool:
    return any(line.split()[1] == str(p) for line in Path("/proc/self/mounts").read_text().splitlines())


def student_env() -> dict[str, str]:
    """What a student's server needs to run labkit from the kit."""
    return {"PYTHONPATH": str(KIT), "LABKIT_PYTHON": str(KIT / ".venv" / "bin" / "python")}


COPIED = ".labkit-copied.json"  # in ~/labs: what the kit last copied, by file, as sha256


def _lesson_files(labs: Path) -> list[Path]:
    """What a student gets: the notebooks, the Korean edition and its glossary (relative)."""
    found = [*labs.glob("*.ipynb"), *labs.glob("ko/*.ipynb"), *labs.glob("ko/*.md")]
    return sorted(p.relative_to(labs) for p in found)


def copy_labs(labs: Path, account: roster.Account) -> Path:
    """The student's own copy of the lessons, in ~/labs. A file the student has changed is
    never overwritten; one they have not is brought up to the kit's version (a kit updated
    between two classes would otherwise leave them a lesson calling what no longer exists)."""
    import hashlib
    import json

    def sha(p: Path) -> str:
        return hashlib.sha256(p.read_bytes()).hexdigest()

    dest = Path(account.home) / "labs"
    record = dest / COPIED
    try:
        copied: dict[str, str] = json.loads(record.read_text()) if record.exists() else {}
    except (OSError, ValueError):
        copied = {}
    made: list[Path] = []
    if not dest.exists():
        dest.mkdir(mode=0o700)
        made.append(dest)
    for rel in _lesson_files(labs):
        src, dst = labs / rel, dest / rel
        if dst.exists() and copied.get(str(rel)) != sha(dst):
            continue  # the student's own work (or a file the kit never copied): theirs
        if dst.exists() and sha(dst) == sha(src):
            continue
        if not dst.parent.exists():
            dst.parent.mkdir(mode=0o700)
            made.append(dst.parent)
        shutil.copy2(src, dst)
        copied[str(rel)] = sha(dst)
        made.append(dst)
    record.write_text(json.dumps(copied, indent=1, sort_keys=True))
    for p in [*made, record]:
        os.chown(p, account.uid, account.gid)
    return dest


def interface_language(account: roster.Account, lang: str) -> Path | None:
    """JupyterLab's interface in the class's language for a student who has not chosen one
    (their own choice, in JupyterLab's Settings > Language, is kept)."""
    locale = LOCALES.get(lang)
    if locale is None:
        return None
    path = Path(account.home) / ".jupyter" / "lab" / "user-settings" / TRANSLATION
    if path.exists():
        return path
    home = Path(account.home)
    made = [p for p in reversed(path.parents) if home in p.parents and not p.exists()]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"locale": locale}, indent=2) + "\n")
    for p in [*made, path]:
        os.chown(p, account.uid, account.gid)
    return path


def make_spawner_class() -> type:
    """LocalProcessSpawner, with the student's cage and labs (jupyterhub imported lazily)."""
    from jupyterhub.spawner import LocalProcessSpawner, set_user_setuid  # heavy optional import: the hub only

    class ClassroomSpawner(LocalProcessSpawner):
        """A student's notebook server: as the student, in their cage, on their own labs."""

        def make_preexec_fn(self, name: str) -> Any:
            procs = Cage(name).procs_files()
            drop = set_user_setuid(name)

            def preexec() -> None:
                pid = str(os.getpid()).encode()
                for f in procs:  # join the memory/CPU cage while still root
                    fd = os.open(f, os.O_WRONLY)
                    try:
                        os.write(fd, pid)
                    finally:
                        os.close(fd)
                drop()

            return preexec

        async def start(self) -> Any:
            classroom = roster.load()
            if classroom is None:
                raise RuntimeError("no classroom record; run labkit classroom up")
            acct = classroom.by_name(self.user.name)
            if acct is None:
                raise RuntimeError(f"{self.user.name} is not in the class list")
            if not Cage(acct.name).procs_files():
                Cage(acct.name).create(classroom.limits)
            copy_labs(Path(classroom.repo) / "labs", acct)
            interface_language(acct, classroom.lang)
            return await super().start()

    return ClassroomSpawner


def start(classroom: roster.Classroom, timeout: float = 90) -> subprocess.Popen:
    """Start JupyterHub in the background; return once its API answers."""
    HUB_DIR.mkdir(parents=True, exist_ok=True)
    HUB_DIR.chmod(0o700)
    s = settings(classroom)
    log = open(HUB_DIR / "jupyterhub.log", "ab")
    proc = subprocess.Popen(
        [str(venv_bin() / "jupyterhub"), "-f", str(CONFIG)],
        cwd=HUB_DIR,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=log,
        start_new_session=True,
        env=dict(os.environ, PATH=s["path"]),
    )
    log.close()
    (HUB_DIR / "jupyterhub.pid").write_text(str(proc.pid))
    url = f"http://127.0.0.1:{s['port']}/hub/api/"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = (HUB_DIR / "jupyterhub.log").read_text(errors="replace").strip().splitlines()[-3:]
            raise LabError(f"JupyterHub exited: {' | '.join(tail)}", exit_code=ExitStatus.FAILURE)
        try:
            urllib.request.urlopen(url, timeout=2)
            return proc
        except OSError:
            time.sleep(0.3)
    proc.terminate()
    raise LabError(f"JupyterHub did not answer within {timeout} s; see {HUB_DIR}/jupyterhub.log", exit_code=1)


def stop(timeout: float = 20) -> bool:
    """Stop the hub (it stops the students' servers: cleanup_servers). True if one ran."""
    try:
        pid = int((HUB_DIR / "jupyterhub.pid").read_text())
    except (OSError, ValueError):
        return False
    for sig, wait in ((15, timeout), (9, 2.0)):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            return True
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            try:
                if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
                    return True
            except (OSError, IndexError):
                return True
            time.sleep(0.1)
    return True


def hub_url(classroom: roster.Classroom) -> str:
    host = "127.0.0.1" if classroom.ip in ("", "0.0.0.0") else classroom.ip
    return f"http://{host}:{classroom.port}"
