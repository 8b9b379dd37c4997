"""What every command module shares: the parent parsers, the lab a command acts on, and
printing (tables, Cilium's text)."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, NoReturn

if TYPE_CHECKING:
    import pandas as pd

    from ..lab import Lab


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (and the help says the rest)."""

    def error(self, message: str) -> NoReturn:
        message = "".join(c if c.isprintable() else repr(c)[1:-1] for c in message)
        self.exit(2, f"{self.prog}: error: {message}; see {self.prog} --help\n")


def lab_options() -> argparse.ArgumentParser:
    common = Parser(add_help=False)
    common.add_argument("--lab", default=None, help="lab name (default: $LABKIT_LAB, else default)")
    common.add_argument(
        "--backend",
        choices=("embedded", "kind"),
        default=os.environ.get("LABKIT_BACKEND"),
        help="embedded (default) or kind",
    )
    return common


def output_options() -> argparse.ArgumentParser:
    out = Parser(add_help=False)
    out.add_argument("-o", "--output", choices=("text", "json"), default="text")
    return out


def node_options() -> argparse.ArgumentParser:
    node = Parser(add_help=False)
    node.add_argument(
        "--node", default=None, help="node whose datapath to read (default: $LABKIT_NODE, else every node in turn)"
    )
    return node


def lab_of(args: argparse.Namespace) -> Lab:
    # heavy (pandas, numpy, both backends): loaded when a command acts on a lab, so
    # `labkit --help` and usage errors answer at once
    from ..lab import connect

    return connect(getattr(args, "lab", None), getattr(args, "backend", None))


def lab_flag(args: argparse.Namespace) -> str:
    lab = getattr(args, "lab", None)
    return f" --lab {lab}" if lab and lab != "default" else ""


def print_table(df: pd.DataFrame, columns: Sequence[str] | None = None) -> None:
    from ..render import text_table  # heavy (pandas): only commands that print tables need it

    print(text_table(df, columns))


def print_text(text: str) -> None:
    """Cilium's text as it is (ending in exactly one newline)."""
    sys.stdout.write(text if text.endswith("\n") else text + "\n")


Args = Any  # argparse.Namespace with the command's own attributes
# build_parser's helper: add(name, fn, help, parents=(common,)) -> the command's parser
AddCommand = Callable[..., argparse.ArgumentParser]
