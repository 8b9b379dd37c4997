"""Nothing lost, nothing leaked (root, real labs): the lab lock, down while commands run,
transactional apply, dead daemons noticed and restarted, the compile cache checked, bpffs."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from labkit.embedded import bpffs, processes, state
from labkit.embedded.backend import EmbeddedBackend
from labkit.embedded.names import LabNames
from labkit.embedded.teardown import leftovers
from labkit.errors import LabError
from labkit.lab import Lab

from .lab_fixtures import lab_name, running_lab

pytestmark = pytest.mark.root
EXTRA = """apiVersion: v1
kind: Pod
metadata: {name: extra, namespace: native, labels: {app: webpod}}
spec:
  nodeName: kind-worker
  containers: [{name: w, image: traefik/whoami}]
"""


def cli(*argv: str, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "labkit.cli", *argv],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=None if env is None else {**os.environ, **env},
    )


def agents(lab: str) -> list[int]:
    """PIDs of event agents reading this lab's pins."""
    out = []
    for d in os.listdir("/proc"):
        try:
            cmd = open(f"/proc/{d}/cmdline", "rb").read().split(b"\0")
        except OSError:
            continue
        if b"labkit.embedded.ebpf.agent" in cmd and str(LabNames(lab).bpffs).encode() in cmd:
            out.append(int(d))
    return out


def curl_ok(lab: Lab, url: str = "http://webpod", n: int = 6) -> int:
    return sum(
        lab.pod("client-pod").run(["curl", "-s", "-m", "3", "-o", "/dev/null", "-w", "%{http_code}", url]).stdout
        == "200"
        for _ in range(n)
    )


def test_two_ups_and_up_with_down_serialise():
    name = lab_name("lk2")
    try:
        procs = [
            subprocess.Popen(
                [sys.executable, "-m", "labkit.cli", "up", "--lab", name, "--no-hint"],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(2)
        ]
        outs = [p.communicate(timeout=300) for p in procs]
        assert [p.returncode for p in procs] == [0, 0], outs
        said = sorted(o[0].strip() for o in outs)
        assert said[0] == f"lab '{name}' is already up" and said[1].startswith(f"lab '{name}' is up"), said
        assert any("is busy" in o[1] and "waits for it" in o[1] for o in outs), outs  # the second one said so
        assert len(agents(name)) == 1 and EmbeddedBackend(name).is_up()
        # up and down at once: either order, never half a lab
        cli("down", "--lab", name)
        up = subprocess.Popen([sys.executable, "-m", "labkit.cli", "up", "--lab", name], stdout=subprocess.PIPE)
        time.sleep(0.3)
        down = cli("down", "--lab", name)
        up.communicate(timeout=300)
        assert down.returncode == 0 and up.returncode == 0
        b = EmbeddedBackend(name)
        if b.is_up():
            assert len(agents(name)) == 1 and b.problems() == []
        else:
            assert leftovers(LabNames(name)) == [] and agents(name) == []
    finally:
        EmbeddedBackend(name).down()
    assert leftovers(LabNames(name)) == [] and not LabNames(name).lock.exists()


def test_down_while_commands_run_and_down_twice():
    with running_lab("ldx", datapath="kernel") as lab:
        m = cli("monitor", "--lab", lab.name, "--last", "1")  # no banner before the error
        assert m.returncode == 2 and m.stderr.count("\n") == 1 and "needs the eBPF datapath" in m.stderr
        busy = subprocess.Popen(
            [sys.executable, "-m", "labkit.cli", "exec", "--lab", lab.name, "client-pod", "--"]
            + ["sh", "-c", "sleep 600 & sleep 600 & while :; do sleep 0.01 & wait; done"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(1.0)
        inside = processes.lab_pids(lab.backend.names)
        assert len(inside) >= 3
        r = cli("down", "--lab", lab.name)
        assert r.returncode == 0 and r.stdout.strip() == f"lab '{lab.name}' removed", r.stderr
        assert leftovers(lab.backend.names) == []
        time.sleep(0.2)
        assert not [p for p in inside if os.path.exists(f"/proc/{p}") and not processes._zombie(p)]
        busy.wait(10)
        again = cli("down", "--lab", lab.name)
        assert again.returncode == 0 and "does not exist; nothing to remove" in again.stdout


def _snapshot(lab: Lab) -> dict:
    names = lab.backend.names
    maps = {
        n: (lab.maps(n).endpoints().to_dict("records"), lab.maps(n).ipcache().to_dict("records"))
        for n in lab.nodes.name
    }
    etc = {str(p): p.read_text() for p in Path("/etc/netns").glob(f"{names.prefix}*/*")}
    return {
        "state": state.path(names).read_text(),
        "netns": sorted(n for n in os.listdir("/run/netns") if names.owns_netns(n)),
        "etc": etc,
        "maps": maps,
        "pins": sorted(str(p.relative_to(names.bpffs)) for p in names.bpffs.rglob("*")),
        "daemons": sorted((d.name, d.pid) for d in processes.daemons(names)),
    }


def test_a_failed_apply_is_undone_and_a_killed_one_too(tmp_path, monkeypatch):
    extra = tmp_path / "extra.yaml"
    extra.write_text(EXTRA)
    with running_lab("lap") as lab:
        before = _snapshot(lab)

        def broken(names, plan, pods, timeout=10.0):
            raise LabError("injected failure after the pods' namespaces, links and map entries", exit_code=1)

        monkeypatch.setattr(processes, "start_workloads", broken)
        with pytest.raises(LabError, match="injected failure"):
            lab.apply(extra)
        monkeypatch.undo()
        assert _snapshot(lab) == before  # no netns, /etc/netns, endpoint or ipcache entry, pin, daemon left
        assert not lab.backend.names.journal.exists()

        # killed while building the pod: the next command undoes it, the retry works at once
        p = subprocess.Popen(
            [sys.executable, "-m", "labkit.cli", "apply", "--lab", lab.name, str(extra)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "LABKIT_VERBOSE": "1"},
        )
        for line in p.stdout:
            if "link add lxc" in line:
                break
        p.send_signal(signal.SIGKILL)
        p.wait()
        assert lab.backend.names.journal.exists()
        r = cli("apply", "--lab", lab.name, str(extra))
        assert r.returncode == 0, r.stderr
        assert "undid what an interrupted apply had added" in r.stderr and "pod/extra created" in r.stdout
        assert "extra" in set(lab.pods.name)
        ip = lab.pods.set_index("name").loc["extra", "ip"]
        assert lab.pod("client-pod").run(["curl", "-s", "-m", "3", f"http://{ip}"]).stdout.startswith("Hostname: extra")


def test_dead_daemons_are_noticed_and_up_restarts_them():
    with running_lab("ldd") as lab:
        names = lab.backend.names
        ds = {d.name: d for d in processes.daemons(names)}
        web = next(n for n in ds if n.startswith("pod.native.webpod"))
        for n in ("agent", "external", web):
            os.kill(ds[n].pid, signal.SIGKILL)
        time.sleep(0.3)
        r = cli("status", "--lab", lab.name)
        assert r.returncode == 1
        warn = [ln for ln in r.stderr.splitlines() if ln.startswith("labkit: warning:")]
        assert len(warn) == 3 and all(f"run labkit up --lab {lab.name}" in w for w in warn), r.stderr
        assert "FAIL  lab" in cli("doctor", "--lab", lab.name).stdout
        m = cli("monitor", "--lab", lab.name, "--last", "1")
        assert "the event agent of lab" in m.stderr and "is not running" in m.stderr
        o = cli("observe", "--lab", lab.name)
        assert "the event agent of lab" in o.stderr
        up = cli("up", "--lab", lab.name)
        assert up.returncode == 0 and "started again what had stopped" in up.stdout
        assert "the event agent" in up.stdout and "the external host's server" in up.stdout
        assert cli("status", "--lab", lab.name).returncode == 0 and lab.backend.problems() == []
        assert curl_ok(lab) == 6
        ext = lab.backend.external_address()
        assert lab.pod("client-pod").run(["curl", "-s", "-m", "3", f"http://{ext}"]).stdout.startswith("Hostname")
        t0 = time.time()
        curl_ok(lab, n=1)
        assert len(lab.flows(seconds=time.time() - t0 + 1)) > 0  # the new agent records again
        assert len(agents(lab.name)) == 1


def _tamper(entry: Path) -> None:
    d = json.loads(entry.read_text())
    prog = d["payload"]["progs"]["cil_from_container"]
    prog["insns"] = base64.b64encode(bytes.fromhex("b700000002000000" + "9500000000000000")).decode()  # r0=2; exit
    prog["relocs"] = []
    entry.write_text(json.dumps(d))


def test_a_tampered_or_corrupt_compile_cache_entry_is_rebuilt(tmp_path):
    env = {"LABKIT_CACHE": str(tmp_path / "cache")}
    name = lab_name("lcc")
    try:
        assert cli("up", "--lab", name, env=env).returncode == 0
        cdir = tmp_path / "cache" / "bpf"
        assert oct(cdir.stat().st_mode & 0o777) == "0o700"
        entries = {p.name.split("-")[0]: p for p in cdir.glob("*.json")}
        assert set(entries) == {"bpf_lxc", "bpf_host", "bpf_sock"}
        assert all(oct(p.stat().st_mode & 0o777) == "0o600" for p in entries.values())
        cli("down", "--lab", name)
        _tamper(entries["bpf_lxc"])
        entries["bpf_host"].write_text("{not json")
        r = cli("up", "--lab", name, env=env)
        assert r.returncode == 0, r.stderr
        warn = [ln for ln in r.stderr.splitlines() if ln.startswith("labkit: warning:")]
        assert len(warn) == 2 and any("SHA-256 does not match" in w for w in warn), r.stderr
        assert any("cannot be read" in w for w in warn)
        lab = Lab(EmbeddedBackend(name))
        lab.apply()
        assert curl_ok(lab, n=3) == 3  # the rebuilt program forwards (r0=2 would drop everything)
        # the cache dir of another user is refused
        os.chown(cdir, 65534, 65534)
        cli("down", "--lab", name)
        r = cli("up", "--lab", name, env=env)
        assert r.returncode == 1 and "is not a directory of uid 0" in r.stderr and r.stderr.count("\n") == 1
        assert leftovers(LabNames(name)) == []
    finally:
        EmbeddedBackend(name).down()


def test_bpffs_is_private_and_stays_mounted_while_a_lab_pins():
    with running_lab("lbf", apply=False) as lab:
        assert os.path.ismount(bpffs.BPFFS)
        assert oct(bpffs.BPFFS_ROOT.stat().st_mode & 0o777) == "0o700"
        if os.path.exists(bpffs.MOUNTED_MARK):  # labkit mounted it: with mode=0700
            opts = subprocess.run(["findmnt", "-no", "OPTIONS", bpffs.BPFFS], capture_output=True, text=True).stdout
            assert "mode=700" in opts
        bpffs.release()  # as another lab's last down would: nothing may go while this lab exists
        assert os.path.ismount(bpffs.BPFFS) and (lab.backend.names.bpffs / "kind-worker" / "cilium_lxc").exists()
        assert len(lab.maps("kind-worker").endpoints()) >= 2


def test_capture_bounds_stop_the_command_and_keep_what_was_captured(tmp_path):
    with running_lab("lcb", datapath="kernel") as lab:
        target = lab.pods.set_index("name").loc["curl-pod", "ip"]
        t0 = time.monotonic()
        r = cli(
            "capture",
            "--lab",
            lab.name,
            "-p",
            "client-pod:eth0",
            "--count",
            "5",
            "--",
            "ping",
            "-c",
            "100",
            "-i",
            "0.1",
            target,
        )
        assert r.returncode == 0 and time.monotonic() - t0 < 8, r.stderr
        assert "== client-pod:eth0: 5 packets" in r.stdout and "capture ended at --count 5 packets" in r.stderr
        t0 = time.monotonic()
        r = cli(
            "capture",
            "--lab",
            lab.name,
            "-p",
            "client-pod:eth0",
            "--seconds",
            "1.5",
            "-w",
            str(tmp_path),
            "--",
            "ping",
            "-c",
            "100",
            "-i",
            "0.2",
            target,
        )
        assert r.returncode == 0 and time.monotonic() - t0 < 8, r.stderr
        n = int(r.stdout.split("== client-pod:eth0: ")[1].split()[0])
        assert n >= 8 and "capture ended at --seconds 1.5" in r.stderr  # echo requests and replies kept
        assert (tmp_path / "client-pod_eth0.pcapng").stat().st_size > 0
        r = cli(
            "capture",
            "--lab",
            lab.name,
            "-p",
            "client-pod:eth0",
            "--max-bytes",
            "1000",
            "--",
            "ping",
            "-c",
            "3",
            "-i",
            "0.2",
            target,
        )
        assert r.returncode == 0 and "stopped at --max-bytes 1000" in r.stderr
        assert "== client-pod:eth0: 2 packets" in r.stdout  # 2 x (98 + 256) <= 1000 < 3 x 354
