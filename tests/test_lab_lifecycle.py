"""Labs side by side, cleanup after crashes, and the host left as it was (root)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from labkit.backend import Settings
from labkit.embedded.backend import EmbeddedBackend
from labkit.embedded.names import LabNames
from labkit.embedded.teardown import leftovers

from .lab_fixtures import host_snapshot, lab_name, running_lab

pytestmark = pytest.mark.root


@pytest.mark.parametrize("datapath", ["kernel", "ebpf"])
def test_two_labs_same_ips_fully_isolated(datapath):
    before = host_snapshot()
    with running_lab("isa", datapath=datapath) as a, running_lab("isb", datapath=datapath) as b:
        assert a.pods[["name", "ip"]].equals(b.pods[["name", "ip"]])
        target = a.pods.set_index("name").loc["client-pod", "ip"]
        points = ["kind-worker:eth0", "client-pod:eth0"]
        # Both labs have their own background traffic (API-server clients on every node), so
        # look for a's pings themselves: in a on every point, in b nowhere.
        with a.capture(points, seconds=15) as in_a, b.capture(points, seconds=15) as in_b:
            r = a.pod("curl-pod").run(["ping", "-c", "5", "-i", "0.05", "-W", "2", target])
            in_a.wait(0.3)
        assert r.returncode == 0
        pings = {p: len(pk) for p, pk in in_a.packets[in_a.packets.proto == "ICMP"].groupby("point")}
        assert all(pings.get(p, 0) >= 10 for p in points), pings  # 5 requests + 5 replies crossed a's node
        assert in_b.packets[in_b.packets.proto == "ICMP"].empty  # and none of it reached b
    assert host_snapshot() == before


def test_down_after_up_killed_halfway():
    name = lab_name("kill")
    names = LabNames(name)
    env = dict(os.environ, LABKIT_VERBOSE="1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "labkit.cli", "up", "--lab", name, "--datapath", "kernel"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    try:
        # kill it as soon as it has created something (it prints each command before running it)
        for line in proc.stdout:
            if "link add eth0" in line:
                break
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert leftovers(names), "the killed up should have left something to clean"
        r = subprocess.run([sys.executable, "-m", "labkit.cli", "down", "--lab", name], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        assert leftovers(names) == []
    finally:
        EmbeddedBackend(name).down()


def test_up_again_after_a_crash_rebuilds():
    name = lab_name("re")
    b = EmbeddedBackend(name)
    try:
        b.up(Settings("kernel"))
        subprocess.run(["ip", "netns", "delete", b.names.node("kind-worker")], check=True)  # break it
        assert not b.is_up()
        assert "is up" in b.up(Settings("kernel"))
        assert b.is_up()
        assert "already up" in b.up(Settings("kernel"))
    finally:
        b.down()
    assert leftovers(b.names) == []


def test_down_all_removes_every_lab():
    from labkit.embedded.names import existing_labs

    others = existing_labs()
    if others and os.environ.get("CI") != "true":
        pytest.skip(f"other labs are up on this machine ({', '.join(others)}); down --all would remove them")
    names = [lab_name("da"), lab_name("db")]
    for n in names:
        EmbeddedBackend(n).up(Settings("kernel"))
    r = subprocess.run([sys.executable, "-m", "labkit.cli", "down", "--all"], capture_output=True, text=True)
    assert r.returncode == 0
    for n in names:
        assert f"lab '{n}' removed" in r.stdout
        assert leftovers(LabNames(n)) == []
