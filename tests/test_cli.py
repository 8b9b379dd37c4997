"""The labkit command: usage and bad input give one line and exit 2, nothing changed."""

from __future__ import annotations

import subprocess
import sys

import pytest

from labkit.cli import main


def run(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "labkit.cli", *argv], capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["up", "--lab", "a;rm -rf /"], "lab name 'a;rm -rf /' is not valid"),
        (["status", "--lab", "$(reboot)"], "is not valid"),
        (["exec", "--lab", "nolab-here", "client-pod", "--", "true"], "lab 'nolab-here' is not up"),
        (["status", "--lab", "nolab-here"], "lab 'nolab-here' is not up"),
        (["exec", "--lab", "nolab-here", "client-pod"], "no command"),
        (["apply", "--lab", "nolab-here", "/nonexistent.yaml"], "no such file"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(argv, message):
    r = run(*argv)
    assert r.returncode == 2, r
    assert r.stderr.count("\n") == 1 and message in r.stderr and "Traceback" not in r.stderr


def test_usage_errors_are_one_line_and_exit_2():
    for argv in (["frobnicate"], [], ["bpf", "foo", "list"], ["capture"], ["up", "--datapath"]):
        r = run(*argv)
        assert r.returncode == 2 and r.stderr.count("\n") == 1 and "see labkit" in r.stderr, (argv, r.stderr)


def test_help_lists_commands(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    for cmd in ("up", "down", "apply", "status", "exec", "shell", "doctor"):
        assert cmd in out
