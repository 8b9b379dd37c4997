"""The ``labkit`` command: one module per command group, all through the Lab facade.

Exit statuses (labkit.errors.ExitStatus): 0 success, 1 a failed operation, 2 bad usage or
bad input, 130 interrupted; errors are one line on stderr saying what was wrong and what
to do (``--traceback`` or ``LABKIT_DEBUG=1`` shows the cause). ``-o json`` wherever
output is a table, with the same schema on both backends.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
import warnings
from collections.abc import Callable, Sequence
from importlib.metadata import PackageNotFoundError, version

from .. import verbose
from ..errors import ExitStatus, LabError, LabWarning
from . import cilium, classroom, docs, lab, monitor, run, trace
from .common import Args, Parser, lab_options, node_options, output_options

EXAMPLES = """\
examples:
  labkit up && labkit apply cluster/manifests
  labkit status
  labkit exec client-pod -- curl -s http://webpod
  labkit exec kind-worker -- ip route
  labkit shell kind-worker          (then, as in the blog: cilium bpf endpoint list)
  labkit list                       (every lab on this machine, and who built it)
  labkit down                       (this lab and the labs its lessons made)
"""


def labkit_version() -> str:
    try:
        return version("labkit")
    except PackageNotFoundError:
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    common, out, node = lab_options(), output_options(), node_options()
    p: argparse.ArgumentParser = Parser(
        prog="labkit",
        description="A teaching lab for Cilium networking.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--version", action="version", version=f"labkit {labkit_version()}")
    p.add_argument(
        "--traceback",
        action="store_true",
        default=os.environ.get("LABKIT_DEBUG") == "1",
        help="on an error, also show the exception behind it (or set LABKIT_DEBUG=1)",
    )
    p.add_argument("-v", "--verbose", action="store_true", help="log every command labkit runs (ip, tc, ...)")
    sub = p.add_subparsers(dest="cmd", required=True, metavar="COMMAND")

    def add(
        name: str, fn: Callable[[Args], int], help: str, parents: Sequence[argparse.ArgumentParser] = (common,)
    ) -> argparse.ArgumentParser:
        sp = sub.add_parser(name, help=help, description=help, parents=list(parents))
        sp.set_defaults(fn=fn)
        return sp

    lab.register(add, common, out)
    run.register(add, common, out)
    docs.register(add, common, out)
    cilium.register(add, common, out, node)
    monitor.register(add, common, out, node)
    trace.register(add, common, out)
    classroom.register(add, common, out)
    return p


def _report(e: BaseException, show_cause: bool) -> None:
    if show_cause:
        cause = e.__cause__ or e.__context__
        traceback.print_exception(cause if cause is not None else e)
    print(f"labkit: error: {e}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    try:
        try:
            return _main(argv)
        finally:  # argparse's --help and usage errors exit from inside: flush here too
            sys.stdout.flush()
    except BrokenPipeError:
        # `labkit ... | head`: the reader left; say nothing and let Python not complain either
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return ExitStatus.SUCCESS


def _main(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    args_in = list(sys.argv[1:] if argv is None else argv)
    # Everything after the first "--" is a command to run (exec, capture, trace), never options.
    command: list[str] = []
    if "--" in args_in:
        i = args_in.index("--")
        args_in, command = args_in[:i], args_in[i + 1 :]
    args = parser.parse_args(args_in)
    if command:
        if "command" not in vars(args):
            parser.error(f"{args.cmd} takes no command after --")
        args.command = command
    if args.verbose:
        verbose()
    with warnings.catch_warnings():
        warnings.simplefilter("always", LabWarning)
        warnings.showwarning = _show_warning
        try:
            code = int(args.fn(args) or 0)
            sys.stdout.flush()
            return code
        except LabError as e:
            _report(e, args.traceback)
            return e.exit_code
        except KeyboardInterrupt:
            return ExitStatus.INTERRUPTED


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """labkit's own warnings as one line (``labkit: warning: ...``); others as Python shows them."""
    if issubclass(category, LabWarning):
        print(f"labkit: warning: {message}", file=sys.stderr, flush=True)
    else:
        sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))


__all__ = ["build_parser", "main"]
