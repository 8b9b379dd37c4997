"""`labkit classroom up | down | status`: JupyterHub for a class on this machine, with the
root lab broker that lets students (never root) build and study their own labs."""

from __future__ import annotations

import argparse
import json
import os

from ..classroom.limits import Limits
from ..errors import ExitStatus, LabError
from .common import AddCommand, Args


def cmd_classroom(args: Args) -> int:
    from ..classroom import session  # heavy: the embedded backend (pandas); `labkit --help` stays fast

    if args.action == "up":
        if not args.class_list:
            raise LabError("give the class list: labkit classroom up --class FILE (one login name per line)")
        limits = Limits(memory_mb=args.memory, cpus=args.cpus, labs=args.labs)
        classroom, url = session.up(args.class_list, ip=args.ip, port=args.port, limits=limits, lang=args.lang)
        students = ", ".join(a.name for a in classroom.students)
        print(f"classroom up: {url}  ({len(classroom.students)} students: {students})")
        print("each student logs in with their name and chooses a password on first login")
        if args.ip == "127.0.0.1":
            print("served on 127.0.0.1 only; use --ip ADDRESS to serve a room")
        return ExitStatus.SUCCESS
    if args.action == "down":
        left = session.down(remove_users=args.remove_users)
        if left:
            raise LabError(f"classroom down left: {', '.join(left)}", exit_code=ExitStatus.FAILURE)
        print(
            "classroom down: hub, servers, labs, broker and namespaces removed"
            + ("" if args.remove_users else "; accounts kept (--remove-users removes them)")
        )
        return ExitStatus.SUCCESS
    if args.action == "token":
        if not args.student:
            raise LabError("say whose token: labkit classroom token --student NAME")
        print(session.token(args.student))
        return ExitStatus.SUCCESS
    st = session.status()
    if args.output == "json":
        print(json.dumps(st, indent=1))
        return ExitStatus.SUCCESS
    if not st.get("url"):
        print("no classroom on this machine (labkit classroom up --class FILE)")
        return ExitStatus.SUCCESS
    print(f"classroom {'up' if st['up'] else 'DOWN (broker not running)'}: {st['url']}  cgroups {st['cgroups']}")
    for s in st["students"]:
        role = " (instructor)" if s["instructor"] else ""
        print(f"  {s['name']}{role}: labs {', '.join(s['labs']) or '-'}; memory {s['memory_mb']} MiB")
    return ExitStatus.SUCCESS


def register(add: AddCommand, common: argparse.ArgumentParser, out: argparse.ArgumentParser) -> None:
    sp = add(
        "classroom", cmd_classroom, "a class on this machine: JupyterHub, students' accounts and labs", parents=(out,)
    )
    sp.add_argument("action", choices=("up", "down", "status", "token"))
    sp.add_argument("--student", metavar="NAME", help="token: the student the hub token is for")
    sp.add_argument("--class", dest="class_list", metavar="FILE", help="the class list: one login name per line")
    sp.add_argument("--ip", default="127.0.0.1", help="address the hub serves on (default 127.0.0.1)")
    sp.add_argument("--port", type=int, default=8000, help="hub port (default 8000)")
    sp.add_argument("--memory", type=int, default=Limits.memory_mb, metavar="MB", help="memory per student")
    sp.add_argument("--cpus", type=float, default=Limits.cpus, help="CPU cores per student")
    sp.add_argument("--labs", type=int, default=Limits.labs, help="labs per student at once")
    sp.add_argument(
        "--lang",
        default=os.environ.get("LABKIT_LANG") or "en",
        help="up: the class's language (ko: the Korean edition, JupyterLab in Korean; default $LABKIT_LANG or en)",
    )
    sp.add_argument("--remove-users", action="store_true", help="down: also remove the students' accounts")


__all__ = ["register"]
