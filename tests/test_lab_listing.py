"""`labkit list`, companion labs removed with their lab, and `down --all` that leaves other
checkouts' labs alone unless asked."""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pytest

from labkit import tables
from labkit.cli import lab as cli_lab
from labkit.cli import main
from labkit.embedded.backend import EmbeddedBackend
from labkit.embedded.names import LabNames
from labkit.embedded.teardown import leftovers
from labkit.lab import Lab, checkout

from .lab_fixtures import lab_name


def test_age_reads_like_kubectl():
    now = 1_000_000.0
    ts = lambda s: pd.Timestamp(now - s, unit="s", tz="UTC")
    assert [cli_lab.age(ts(s), now) for s in (5, 125, 3600 + 300, 2 * 86400 + 7200)] == ["0m", "2m", "1h05m", "2d02h"]
    assert cli_lab.age(None) == "" and cli_lab.age(pd.NaT) == ""


class FakeBackend:
    """Only what `down --all` and `list` use; records what was removed."""

    removed: list[str] = []

    def __init__(self, lab, rows):
        self.lab, self.rows = lab, rows

    def labs(self):
        return tables.LABS.frame(self.rows)

    def down(self):
        FakeBackend.removed.append(self.lab)
        return f"lab {self.lab!r} removed"


@pytest.fixture
def fake_labs(monkeypatch):
    rows = [
        {"name": "mine", "backend": "embedded", "status": "up", "datapath": "ebpf", "checkout": checkout()},
        {"name": "mine-k", "backend": "embedded", "status": "up", "companion_of": "mine", "checkout": checkout()},
        {"name": "alice", "backend": "embedded", "status": "up", "checkout": "/home/alice/labkit"},
        {"name": "old", "backend": "embedded", "status": "leftovers", "checkout": ""},
    ]
    FakeBackend.removed = []
    monkeypatch.setattr(cli_lab, "backend_for", lambda lab=None, backend=None: FakeBackend(lab, rows))
    return rows


def test_down_all_leaves_other_checkouts_labs_unless_yes(fake_labs, capsys, monkeypatch):
    monkeypatch.setattr(sys, "stdin", open("/dev/null"))  # no terminal: nobody to ask
    assert main(["down", "--all"]) == 0
    assert FakeBackend.removed == ["mine", "mine-k"]
    out = capsys.readouterr().out
    assert "left alone (not built from this checkout): alice, old; add --yes" in out
    FakeBackend.removed = []
    assert main(["down", "--all", "--yes"]) == 0
    assert FakeBackend.removed == ["mine", "mine-k", "alice", "old"]


def test_down_all_asks_on_a_terminal(fake_labs, capsys, monkeypatch):
    answers = iter(["n\n", "y\n"])

    class Tty:
        def isatty(self):
            return True

        def readline(self):
            return next(answers)

    monkeypatch.setattr(sys, "stdin", Tty())
    main(["down", "--all"])
    assert FakeBackend.removed == ["mine", "mine-k"]
    assert "2 labs were not built from this checkout (alice, old): remove them too? [y/N]" in capsys.readouterr().out
    FakeBackend.removed = []
    main(["down", "--all"])
    assert FakeBackend.removed == ["mine", "mine-k", "alice", "old"]


def test_list_shows_who_built_what(fake_labs, capsys):
    assert main(["list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["NAME", "STATUS", "DATAPATH", "OPTIONS", "AGE", "COMPANION_OF", "COMPANIONS", "MADE_IN"]
    by_name = {line.split()[0]: line for line in lines[1:]}
    assert by_name["mine"].endswith("this checkout") and by_name["alice"].endswith("/home/alice/labkit")
    assert "mine" in by_name["mine-k"].split()
    assert main(["list", "-o", "json"]) == 0
    assert [r["name"] for r in json.loads(capsys.readouterr().out)] == ["mine", "mine-k", "alice", "old"]


@pytest.mark.root
def test_companions_are_listed_and_removed_with_their_lab():
    parent, child = lab_name("lst"), lab_name("lst") + "-k"
    a, b = Lab(EmbeddedBackend(parent)), Lab(EmbeddedBackend(child))
    try:
        a.up()
        b.up(datapath="kernel")
        a.add_companion(b)
        assert a.companions() == [child]
        r = subprocess.run(
            [sys.executable, "-m", "labkit.cli", "list", "-o", "json"], capture_output=True, text=True, check=True
        )
        rows = {row["name"]: row for row in json.loads(r.stdout)}
        assert rows[parent]["companions"] == child and rows[child]["companion_of"] == parent
        assert rows[child]["datapath"] == "kernel" and rows[parent]["datapath"] == "ebpf"
        assert rows[parent]["checkout"] == checkout() and rows[parent]["created"]
        text = subprocess.run(
            [sys.executable, "-m", "labkit.cli", "list"], capture_output=True, text=True, check=True
        ).stdout
        line = next(x for x in text.splitlines() if x.startswith(parent + " "))
        assert "this checkout" in line and child in line
        said = subprocess.run(
            [sys.executable, "-m", "labkit.cli", "down", "--lab", parent], capture_output=True, text=True, check=True
        ).stdout
        assert f"lab {child!r} removed" in said and f"lab {parent!r} removed" in said
        assert leftovers(LabNames(parent)) == [] and leftovers(LabNames(child)) == []
    finally:
        b.backend.down()
        a.backend.down()
