"""Classroom images, workstation image and the hand-run scripts agree with labkit/live/versions.py
and with cluster/ (the single source of truth)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).parent / "fixtures" / "live"))
from fakes import Fakes

from labkit.live import bringup, versions

REPO = Path(__file__).resolve().parents[1]


def normalize(ref: str) -> str:
    """Docker's reading of an image reference: docker.io/ and library/ implied, :latest if untagged."""
    name, _, digest = ref.partition("@")
    first = name.split("/")[0]
    if "/" not in name:
        name = f"docker.io/library/{name}"
    elif "." not in first and ":" not in first and first != "localhost":
        name = f"docker.io/{name}"
    if ":" not in name.rsplit("/", 1)[-1]:
        name += ":latest"
    return f"{name}@{digest}" if digest else name


def listed() -> list[str]:
    text = (REPO / "images" / "classroom-images.txt").read_text()
    return [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]


def manifest_images() -> set[str]:
    out = set()
    for f in (REPO / "cluster" / "manifests").glob("*.yaml"):
        for doc in yaml.safe_load_all(f.read_text()):
            if not isinstance(doc, dict):
                continue
            spec = doc.get("spec", {})
            pod = spec.get("template", {}).get("spec", spec)
            for c in (pod.get("containers") or []) + (pod.get("initContainers") or []):
                out.add(normalize(c["image"]))
    return out


def test_classroom_list_is_exactly_what_the_lab_uses():
    got = [normalize(i) for i in listed()]
    assert len(got) == len(set(got)), "duplicates"
    want = manifest_images() | {normalize(i) for i in versions.cilium_images()} | {normalize(versions.KIND_NODE_IMAGE)}
    assert set(got) == want
    assert {"docker.io/traefik/whoami:latest", "docker.io/nicolaka/netshoot:latest"} <= set(got)


def test_cilium_version_is_written_once_and_matches_the_blog():
    assert versions.CILIUM_VERSION == "1.17.6"
    blog = (REPO / "tests" / "data" / "blog-helm-install.txt").read_text()
    assert f"--version {versions.CILIUM_VERSION}" in blog
    assert f"quay.io/cilium/cilium:v{versions.CILIUM_VERSION}" in listed()
    assert f"quay.io/cilium/hubble-relay:v{versions.CILIUM_VERSION}" in listed()
    install = next(s.argv for s in bringup.up_steps("kind", REPO) if "install" in s.argv)
    assert install[install.index("--version") + 1] == versions.CILIUM_VERSION
    for script in ("cluster/up-kind.sh", "images/preload.sh"):
        text = (REPO / script).read_text()
        assert "labkit/live/versions.py" in text and "1.17.6" not in text, script


def test_workstation_dockerfile_pins_the_versions():
    text = (REPO / "images" / "workstation" / "Dockerfile").read_text()
    args = dict(re.findall(r"^ARG (\w+)=(\S+)$", text, re.M))
    for name in ("KIND_VERSION", "KUBECTL_VERSION", "HELM_VERSION", "CILIUM_CLI_VERSION", "DOCKER_CLI_VERSION"):
        assert args[name] == getattr(versions, name), name
    assert text.startswith("#") and "FROM debian:" in text
    for pkg in ("python3-bpfcc", "tcpdump"):
        assert pkg in text
    assert "jupyter" in text and "pip install" in text


def test_scripts_are_executable_and_valid_bash():
    for script in ("cluster/up-kind.sh", "cluster/down-kind.sh", "images/preload.sh"):
        p = REPO / script
        assert p.stat().st_mode & 0o111, script
        subprocess.run(["bash", "-n", str(p)], check=True)


@pytest.fixture
def fakes(monkeypatch, tmp_path):
    return Fakes(monkeypatch, tmp_path)


def _work(calls):
    return [
        c
        for c in calls
        if c[1:2] != ["version"] and c[:3] != ["kind", "get", "clusters"] and "status" not in c[2:5] + c[1:2]
    ]


def test_up_kind_sh_runs_the_same_steps_as_labkit_up(fakes, tmp_path):
    r = subprocess.run(["bash", str(REPO / "cluster" / "up-kind.sh")], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    script = _work(fakes.calls())
    fakes.clear()
    fakes.clusters()
    fakes.releases()
    bringup.up("kind", REPO, log=lambda s: None)
    assert script == _work(fakes.calls())
    assert script[0][:3] == ["kind", "create", "cluster"] and script[-1][-3:] == ["pods", "--all", "--timeout=600s"]


def test_down_kind_sh(fakes):
    fakes.clusters("kind")
    subprocess.run(["bash", str(REPO / "cluster" / "down-kind.sh")], check=True, capture_output=True)
    assert fakes.calls() == [["kind", "delete", "cluster", "--name", "kind"]]
