"""`labkit capture`: tcpdump-like lines per point while a command runs, pcapng files (root)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from .lab_fixtures import running_lab

pytestmark = pytest.mark.root


def test_capture_command_prints_each_point_and_writes_files(tmp_path):
    with running_lab("ccli", datapath="kernel") as lab:
        pods = lab.pods.set_index("name")
        target = pods.loc["curl-pod", "ip"]
        r = subprocess.run(
            [
                sys.executable,
                "-m",
                "labkit.cli",
                "capture",
                "--lab",
                lab.name,
                "-p",
                "client-pod:eth0",
                "-p",
                "kind-worker:lxc*",
                "-w",
                str(tmp_path),
                "--",
                "ping",
                "-c",
                "2",
                "-i",
                "0.2",
                "-W",
                "2",
                target,
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert r.returncode == 0, r.stderr
        lxcs = sorted(pods[pods.node == "kind-worker"].lxc)
        headers = [line for line in r.stdout.splitlines() if line.startswith("== ")]
        assert [h.rsplit(":", 1)[0] for h in headers] == ["== client-pod:eth0"] + [f"== kind-worker:{x}" for x in lxcs]
        assert r.stdout.count(f"IP {pods.loc['client-pod', 'ip']} > {target}: ICMP echo request") == 4  # eth0 + lxc
        files = sorted(p.name for p in tmp_path.iterdir())
        assert files == sorted(["client-pod_eth0.pcapng"] + [f"kind-worker_{x}.pcapng" for x in lxcs])
        back = subprocess.run(
            ["tcpdump", "-nr", str(tmp_path / "client-pod_eth0.pcapng")], capture_output=True, text=True
        )
        assert back.stdout.count("ICMP echo reply") == 2
        # the command's exit code passes through; a bad point is one line, exit 2
        bad = subprocess.run(
            [sys.executable, "-m", "labkit.cli", "capture", "--lab", lab.name, "-p", "client-pod:nope0", "--", "true"],
            capture_output=True,
            text=True,
        )
        assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "no interface matches 'nope0'" in bad.stderr
