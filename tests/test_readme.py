"""Every command the README shows runs as written on a lab that is up (root).

The commands are read from the README itself (the ```sh block of "The labkit command" and
the ```python block of "From Python"), so the README cannot drift from what works. They run
on this test's own lab ($LABKIT_LAB), in README order, from `labkit up` to `labkit down`.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from labkit.embedded.backend import EmbeddedBackend
from labkit.embedded.names import LabNames
from labkit.embedded.teardown import leftovers

from .lab_fixtures import lab_name

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
LABKIT = [sys.executable, "-m", "labkit.cli"]


def blocks(lang: str, after: str) -> str:
    section = README[README.index(after) :]
    return re.search(rf"```{lang}\n(.*?)```", section, re.S).group(1)


def readme_commands() -> list[list[str]]:
    lines = blocks("sh", "## The `labkit` command").splitlines()
    return [words for words in (shlex.split(line, comments=True) for line in lines) if words]


def test_the_readme_shows_only_commands_that_exist_and_never_down_all():
    cmds = readme_commands()
    assert cmds and all(c[0] == "labkit" for c in cmds)
    assert not any("--all" in c for c in cmds), "the README must not advertise removing other people's labs"
    assert "down --all" not in (ROOT / "Makefile").read_text()
    assert cmds[0][:2] == ["labkit", "up"] and cmds[-1][:2] == ["labkit", "down"]


@pytest.mark.root
@pytest.mark.slow
def test_every_readme_command_runs_as_written():
    lab = lab_name("rdm")
    env = dict(os.environ, LABKIT_LAB=lab)
    ran = []
    try:
        for cmd in readme_commands():
            args = cmd[1:]
            if args[:1] == ["export"]:
                # the same command as tests/test_export.py runs (there with another --out)
                assert '"export", "--out"' in (ROOT / "tests" / "test_export.py").read_text()
                continue
            if args[:1] == ["monitor"]:
                proc = subprocess.Popen(
                    LABKIT + args, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
                )
                time.sleep(3)
                subprocess.run(
                    LABKIT + ["exec", "client-pod", "--", "curl", "-s", "http://webpod"],
                    env=env,
                    cwd=ROOT,
                    capture_output=True,
                    check=True,
                )
                time.sleep(1)
                proc.send_signal(signal.SIGINT)  # the README's Ctrl-C
                out, err = proc.communicate(timeout=30)
                r = subprocess.CompletedProcess(cmd, proc.returncode, out, err)
                assert "Listening for events" in out + err and "Received an interrupt" in err
            elif args[:1] == ["shell"]:
                r = subprocess.run(
                    LABKIT + args,
                    env=env,
                    cwd=ROOT,
                    capture_output=True,
                    text=True,
                    timeout=60,
                    input="cilium bpf endpoint list\nexit\n",
                )
                assert "IP ADDRESS" in r.stdout and "LOCAL ENDPOINT INFO" in r.stdout
            else:
                r = subprocess.run(LABKIT + args, env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
            ok = (0, 1) if args[:1] == ["doctor"] else (0,)  # doctor says what is missing with exit 1
            assert r.returncode in ok, f"{shlex.join(cmd)} exited {r.returncode}: {r.stderr[-400:]}"
            assert "Traceback" not in r.stderr, f"{shlex.join(cmd)}: {r.stderr[-400:]}"
            if args[:2] == ["bpf", "endpoint"]:
                assert r.stdout.count("== kind-") == 3  # no hidden --node: every node, with a header
            if args[:1] == ["capture"]:
                assert "== client-pod:eth0:" in r.stdout and "Flags [S]" in r.stdout
            ran.append(shlex.join(cmd))
        assert leftovers(LabNames(lab)) == []  # the README's last line, labkit down, removed it all
        py = subprocess.run(
            [sys.executable, "-c", blocks("python", "## From Python")],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert py.returncode == 0, py.stderr[-800:]
    finally:
        EmbeddedBackend(lab).down()
    assert len(ran) == len(readme_commands()) - 1


@pytest.mark.root
def test_piped_into_a_reader_that_left_ends_quietly():
    from .lab_fixtures import running_lab

    with running_lab("pipe") as lab:
        env = dict(os.environ, LABKIT_LAB=lab.name)
        for args in (
            ["status"],
            ["bpf", "ct", "list", "global"],
            ["observe"],
            ["monitor", "--last", "60", "-j"],
            ["list"],
            ["bpf", "endpoint", "list"],
        ):
            r, w = os.pipe()
            os.close(r)  # the reader (head) is already gone: every write fails with EPIPE
            try:
                p = subprocess.run(
                    LABKIT + args, env=env, cwd=ROOT, stdout=w, stderr=subprocess.PIPE, text=True, timeout=60
                )
            finally:
                os.close(w)
            said = [x for x in p.stderr.splitlines() if not x.startswith(("Listening for events", "Press Ctrl-C"))]
            assert said == [], f"labkit {' '.join(args)}: {p.stderr[-300:]}"  # only cilium monitor's banner
            assert p.returncode == 0


@pytest.mark.root
def test_capture_around_labkit_exec_runs_the_command_in_that_pod():
    """`labkit capture -p ... -- labkit exec POD -- CMD`, a natural first try, means CMD in POD."""
    from .lab_fixtures import running_lab

    with running_lab("cex") as lab:
        env = dict(os.environ, LABKIT_LAB=lab.name)
        web = lab.pods[lab.pods.app == "whoami"].ip.iloc[0]
        argv = [
            "capture",
            "-p",
            "client-pod:eth0",
            "--",
            "labkit",
            "exec",
            "client-pod",
            "--",
            "curl",
            "-s",
            f"http://{web}",
        ]
        r = subprocess.run(LABKIT + argv, env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr[-500:]
        assert "Flags [S]" in r.stdout and f"> {web}.80" in r.stdout
