"""`labkit export`: the labs as HTML tutorials that read offline."""

from __future__ import annotations

import argparse

from ..errors import ExitStatus
from ..export import export
from .common import AddCommand, Args


def cmd_export(args: Args) -> int:
    for page in export(args.out, lab=args.lab, backend=args.backend, only=args.only):
        print(page)
    return ExitStatus.SUCCESS


def register(add: AddCommand, common: argparse.ArgumentParser, out: argparse.ArgumentParser) -> None:
    sp = add("export", cmd_export, "run the labs and write them as HTML tutorials that read offline")
    sp.add_argument("--out", default="out/html", help="folder for the pages (default: out/html)")
    sp.add_argument("--only", action="append", metavar="NAME", help="only notebooks whose file name contains NAME")
