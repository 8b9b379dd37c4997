"""Failure paths of the eBPF datapath (root): a compile error or a verifier rejection
fails `up` with the compiler's / verifier's message and leaves nothing of the lab."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from labkit.embedded.names import LabNames
from labkit.embedded.teardown import leftovers

from .lab_fixtures import lab_name

pytestmark = pytest.mark.root


def _broken_bpf(tmp_path, needle: str, insert: str):
    src = tmp_path / "bpf"
    shutil.copytree(__import__("labkit.embedded.ebpf.source", fromlist=["x"]).BPF_DIR, src)
    lxc = src / "bpf_lxc.c"
    text = lxc.read_text()
    assert needle in text
    lxc.write_text(text.replace(needle, needle + insert, 1))
    return src


def _up(tmp_path, bpf_dir, tag: str):
    name = lab_name(tag)
    env = {
        "LABKIT_BPF_DIR": str(bpf_dir),
        "LABKIT_CACHE": str(tmp_path / "cache"),
        "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
    }
    r = subprocess.run(
        [sys.executable, "-m", "labkit.cli", "up", "--lab", name], capture_output=True, text=True, env=env, timeout=300
    )
    return name, r


def test_compile_error_fails_up_cleanly(tmp_path):
    bpf = _broken_bpf(tmp_path, "int cil_from_container(struct __sk_buff *skb)\n{", "\n\tthis is not C;")
    name, r = _up(tmp_path, bpf, "dpfc")
    try:
        assert r.returncode == 1
        assert "compiling bpf/bpf_lxc.c failed" in r.stderr and "bpf_lxc.c:" in r.stderr and "error" in r.stderr
        assert len(r.stderr.strip().splitlines()) == 1
        assert leftovers(LabNames(name)) == []
    finally:
        subprocess.run([sys.executable, "-m", "labkit.cli", "down", "--lab", name], capture_output=True)


def test_verifier_error_shows_the_log_and_fails_up_cleanly(tmp_path):
    bad = "\n\t{ volatile __u32 *p = (void *)(long)skb->data; if (p[100]) return 1; }"
    bpf = _broken_bpf(tmp_path, "int cil_from_container(struct __sk_buff *skb)\n{", bad)
    name, r = _up(tmp_path, bpf, "dpfv")
    try:
        assert r.returncode == 1
        assert "the verifier rejected cil_from_container (bpf/bpf_lxc.c)" in r.stderr
        assert "invalid access to packet" in r.stderr
        assert leftovers(LabNames(name)) == []
    finally:
        subprocess.run([sys.executable, "-m", "labkit.cli", "down", "--lab", name], capture_output=True)


def test_bpf_commands_on_a_kernel_lab_say_what_to_do():
    from .lab_fixtures import running_lab

    with running_lab("dpk", apply=False, datapath="kernel") as lab:
        r = subprocess.run(
            [sys.executable, "-m", "labkit.cli", "bpf", "endpoint", "list", "--node", "kind-worker", "--lab", lab.name],
            capture_output=True,
            text=True,
        )
        assert r.returncode == 2 and "needs the eBPF datapath" in r.stderr and "--datapath ebpf" in r.stderr
        assert not lab.backend.names.bpffs.exists()
