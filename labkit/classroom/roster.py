"""The class: who is in it (the class list), their Linux accounts, and the classroom's
record on the machine (/run/labkit-classroom/class.json) that the broker, the hub and the
instructor's page read.

A class list is a text file, one login name per line; ``instructor`` after a name makes
that person a hub admin who sees the class page; ``#`` starts a comment::

    teacher instructor
    alice
    bob
"""

from __future__ import annotations

import json
import os
import pwd
import re
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..errors import ExitStatus, LabError
from .limits import Limits
from .protocol import CLASSROOM_ROOT

NAME_RE = re.compile(r"^[a-z][a-z0-9]{0,9}$")  # short: lab names are "<student>--<lab>", 20 at most
GECOS = "labkit classroom"
STATE = CLASSROOM_ROOT / "class.json"


@dataclass(frozen=True)
class Member:
    name: str
    instructor: bool = False


@dataclass(frozen=True)
class Account:
    name: str
    uid: int
    gid: int
    home: str
    instructor: bool = False


def parse_class_list(text: str, source: str = "class list") -> list[Member]:
    """The members of a class list; a bad line is a one-line error naming it."""
    members: dict[str, Member] = {}
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].split()
        if not line:
            continue
        name, *rest = line
        if not NAME_RE.match(name):
            raise LabError(
                f"{source} line {n}: {name!r} is not a valid login name; use 1-10 characters a-z, 0-9, "
                "starting with a letter"
            )
        if rest not in ([], ["instructor"]):
            raise LabError(f"{source} line {n}: after the name only the word 'instructor' may follow")
        if name in members:
            raise LabError(f"{source} line {n}: {name} is listed twice")
        members[name] = Member(name, instructor=bool(rest))
    if not members:
        raise LabError(f"{source} names nobody; write one login name per line")
    return list(members.values())


def load_class_list(path: str | Path) -> list[Member]:
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as e:
        raise LabError(f"cannot read the class list {p}: {e.strerror}") from None
    return parse_class_list(text, str(p))


def account(name: str) -> Account | None:
    try:
        pw = pwd.getpwnam(name)
    except KeyError:
        return None
    return Account(pw.pw_name, pw.pw_uid, pw.pw_gid, pw.pw_dir)


def ensure_account(member: Member) -> Account:
    """The member's Linux account, created (home, shell, subordinate ids) if missing. An
    existing account is used only if labkit made it, so no one else's account is touched."""
    pw = _pw(member.name)
    if pw is None:
        Path("/etc/subuid").touch(exist_ok=True)
        Path("/etc/subgid").touch(exist_ok=True)
        r = subprocess.run(
            ["useradd", "--create-home", "--shell", "/bin/bash", "--comment", GECOS, "--user-group", member.name],
            capture_output=True,
            text=True,
        )
        if r.returncode != 0:
            raise LabError(f"useradd {member.name} failed: {r.stderr.strip()}", exit_code=ExitStatus.FAILURE)
        pw = _pw(member.name)
        assert pw is not None
    elif pw.pw_gecos != GECOS:
        raise LabError(
            f"a Linux account {member.name!r} already exists and was not made by labkit; "
            "choose another name in the class list"
        )
    os.chmod(pw.pw_dir, 0o700)  # no student reads another's notebooks
    return Account(pw.pw_name, pw.pw_uid, pw.pw_gid, pw.pw_dir, member.instructor)


def remove_account(name: str) -> None:
    pw = _pw(name)
    if pw is not None and pw.pw_gecos == GECOS:
        subprocess.run(["userdel", "--remove", name], capture_output=True)


def _pw(name: str) -> pwd.struct_passwd | None:
    try:
        return pwd.getpwnam(name)
    except KeyError:
        return None


@dataclass
class Classroom:
    """What ``labkit classroom up`` set up, as the broker and the hub read it."""

    accounts: list[Account]
    limits: Limits = field(default_factory=Limits)
    ip: str = "127.0.0.1"
    port: int = 8000
    repo: str = ""  # the labkit checkout whose labs/ and .venv the class uses
    lang: str = "en"  # the class's language: "ko" opens the Korean edition, JupyterLab in Korean

    def by_uid(self, uid: int) -> Account | None:
        return next((a for a in self.accounts if a.uid == uid), None)

    def by_name(self, name: str) -> Account | None:
        return next((a for a in self.accounts if a.name == name), None)

    @property
    def students(self) -> list[Account]:
        return [a for a in self.accounts if not a.instructor]

    def to_json(self) -> str:
        d = asdict(self)
        d["limits"] = self.limits.to_dict()
        return json.dumps(d, indent=1)

    @classmethod
    def from_json(cls, text: str) -> Classroom:
        d = json.loads(text)
        return cls(
            [Account(**a) for a in d["accounts"]],
            Limits.from_dict(d.get("limits", {})),
            d.get("ip", "127.0.0.1"),
            int(d.get("port", 8000)),
            d.get("repo", ""),
            d.get("lang", "en"),
        )

    def save(self, path: Path = STATE) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(self.to_json())
        os.replace(tmp, path)


def load(path: Path = STATE) -> Classroom | None:
    try:
        return Classroom.from_json(path.read_text())
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError):
        raise LabError(f"the classroom record {path} is damaged; run labkit classroom down", exit_code=1) from None
