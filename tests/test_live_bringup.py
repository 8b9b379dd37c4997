"""`up`/`down`/`apply` of the live lab run the right commands, in order (against fake tools)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent / "fixtures" / "live"))
from fakes import Fakes

from labkit.errors import LabError
from labkit.live import bringup, versions

REPO = Path(__file__).resolve().parents[1]
CL = REPO / "cluster"


@pytest.fixture
def fakes(monkeypatch, tmp_path):
    return Fakes(monkeypatch, tmp_path)


def work(calls):
    """The calls that do something (not the version checks and existence probes)."""
    skip = (["kind", "version"], ["docker", "version"], ["helm", "version"], ["kubectl", "version"])
    return [
        c
        for c in calls
        if c[:2] not in [list(s) for s in skip]
        and c[:3] != ["kind", "get", "clusters"]
        and "status" not in c[:4]
        or c[:4] == ["kubectl", "--context", "kind-kind", "-n"]
        and "rollout" in c
    ]


def test_up_runs_every_step_in_order(fakes):
    bringup.up("kind", REPO, log=lambda s: None)
    assert work(fakes.calls()) == [
        [
            "kind",
            "create",
            "cluster",
            "--name",
            "kind",
            "--config",
            str(CL / "kind.yaml"),
            "--image",
            versions.KIND_NODE_IMAGE,
        ],
        ["helm", "repo", "add", "cilium", "https://helm.cilium.io", "--force-update"],
        ["helm", "repo", "update", "cilium"],
        [
            "helm",
            "--kube-context",
            "kind-kind",
            "install",
            "cilium",
            "cilium/cilium",
            "--version",
            "1.17.6",
            "--namespace",
            "kube-system",
            "-f",
            str(CL / "cilium-values.yaml"),
        ],
        [
            "kubectl",
            "--context",
            "kind-kind",
            "-n",
            "kube-system",
            "rollout",
            "status",
            "daemonset/cilium",
            "--timeout=600s",
        ],
        [
            "kubectl",
            "--context",
            "kind-kind",
            "-n",
            "kube-system",
            "rollout",
            "status",
            "daemonset/cilium-envoy",
            "--timeout=600s",
        ],
        [
            "kubectl",
            "--context",
            "kind-kind",
            "-n",
            "kube-system",
            "rollout",
            "status",
            "deployment/cilium-operator",
            "--timeout=600s",
        ],
        [
            "kubectl",
            "--context",
            "kind-kind",
            "-n",
            "kube-system",
            "rollout",
            "status",
            "deployment/hubble-relay",
            "--timeout=600s",
        ],
        [
            "kubectl",
            "--context",
            "kind-kind",
            "-n",
            "kube-system",
            "rollout",
            "status",
            "deployment/hubble-ui",
            "--timeout=600s",
        ],
        ["kubectl", "--context", "kind-kind", "wait", "--for=condition=Ready", "nodes", "--all", "--timeout=600s"],
        ["kubectl", "--context", "kind-kind", "apply", "-f", str(CL / "manifests")],
        [
            "kubectl",
            "--context",
            "kind-kind",
            "-n",
            "native",
            "wait",
            "--for=condition=Ready",
            "pods",
            "--all",
            "--timeout=600s",
        ],
    ]
    # tools were checked first
    assert fakes.calls()[0] == ["docker", "version", "--format", "{{.Client.Version}}"]


def test_up_again_skips_create_and_install(fakes):
    fakes.clusters("kind")
    fakes.releases("cilium")
    logged = []
    bringup.up("kind", REPO, log=logged.append)
    assert not any(c[:2] == ["kind", "create"] for c in fakes.calls())
    assert not any("install" in c or c[:2] == ["helm", "repo"] for c in fakes.calls())
    assert any("already done, skipped" in line for line in logged)
    assert any(c[-3:] == ["pods", "--all", "--timeout=600s"] for c in fakes.calls())


def test_other_lab_name_and_offline(fakes, tmp_path):
    repo = tmp_path / "repo"
    (repo / "images" / "cache").mkdir(parents=True)
    (repo / "cluster").symlink_to(CL)
    bringup.offline_chart(repo).write_text("chart")
    bringup.up("alice", repo, offline=True, log=lambda s: None)
    calls = fakes.calls()
    assert [
        "kind",
        "create",
        "cluster",
        "--name",
        "alice",
        "--config",
        str(repo / "cluster" / "kind.yaml"),
        "--image",
        "kindest/node:v1.33.1",
    ] in calls  # offline: by tag (a loaded image has no digest)
    install = next(c for c in calls if "install" in c)
    assert install[:6] == [
        "helm",
        "--kube-context",
        "kind-alice",
        "install",
        "cilium",
        str(bringup.offline_chart(repo)),
    ]
    assert install.count("--set") == len(bringup.OFFLINE_SETS) and "image.useDigest=false" in install
    assert not any(c[:2] == ["helm", "repo"] for c in calls)


def test_offline_without_chart_is_laberror(fakes, tmp_path):
    with pytest.raises(LabError) as e:
        bringup.up("kind", tmp_path, offline=True, log=lambda s: None)
    assert "images/preload.sh" in str(e.value)


def test_failed_step_stops_with_laberror(fakes):
    fakes.env("LABKIT_FAKE_FAIL", "helm --kube-context kind-kind install")
    with pytest.raises(LabError) as e:
        bringup.up("kind", REPO, log=lambda s: None)
    assert "failed (exit 1)" in str(e.value) and e.value.exit_code == 1
    assert not any("rollout" in c for c in fakes.calls())


def test_down(fakes):
    fakes.clusters("kind", "bob")
    bringup.down("kind", log=lambda s: None)
    assert fakes.calls()[-1] == ["kind", "delete", "cluster", "--name", "kind"]
    assert bringup.cluster_exists("bob") and not bringup.cluster_exists("kind")


def test_apply_one_file_waits_for_its_namespace(fakes):
    bringup.apply("kind", [CL / "manifests" / "30-client-pod.yaml"], log=lambda s: None)
    assert fakes.calls()[-2:] == [
        ["kubectl", "--context", "kind-kind", "apply", "-f", str(CL / "manifests" / "30-client-pod.yaml")],
        [
            "kubectl",
            "--context",
            "kind-kind",
            "-n",
            "native",
            "wait",
            "--for=condition=Ready",
            "pods",
            "--all",
            "--timeout=300s",
        ],
    ]
    with pytest.raises(LabError) as e:
        bringup.apply("kind", ["no/such/dir"])
    assert e.value.exit_code == 2


def test_up_needs_every_tool(fakes, tmp_path):
    fakes.hide("kind", tmp_path)
    with pytest.raises(LabError) as e:
        bringup.up("kind", REPO, log=lambda s: None)
    assert str(e.value).startswith("kind not found on PATH")
    assert fakes.calls("helm") == [] or all(c[1] == "version" for c in fakes.calls("helm"))
