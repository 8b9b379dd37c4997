"""Finding and checking docker/kind/helm/kubectl, and `labkit doctor --backend kind` (against fakes)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent / "fixtures" / "live"))
from fakes import Fakes

from labkit.doctor import Check, format_checks
from labkit.errors import LabError
from labkit.live import tools


@pytest.fixture
def fakes(monkeypatch, tmp_path):
    return Fakes(monkeypatch, tmp_path)


def test_parse_version_of_each_tool_output():
    assert tools.parse_version("kind v0.29.0 go1.24.2 linux/amd64") == (0, 29, 0)
    assert tools.parse_version("v3.18.4+gd80839c") == (3, 18, 4)
    assert tools.parse_version('{"clientVersion": {"gitVersion": "v1.33.1"}, "kustomizeVersion": "v5.6.0"}') == (
        1,
        33,
        1,
    )
    assert tools.parse_version("28.3.2") == (28, 3, 2)
    assert tools.parse_version("garbage") is None


def test_versions_of_fakes(fakes):
    assert tools.version("kind") == (0, 29, 0)
    assert tools.version("kubectl") == (1, 33, 1)
    assert tools.require("helm").endswith("/helm")


def test_missing_tool_is_one_line_naming_it(fakes, tmp_path):
    fakes.hide("helm", tmp_path)
    with pytest.raises(LabError) as e:
        tools.require("helm")
    msg = str(e.value)
    assert msg.startswith("helm not found on PATH") and "https://helm.sh" in msg and "\n" not in msg
    assert e.value.exit_code == 1


def test_old_tool_is_one_line_naming_it(fakes):
    fakes.env("LABKIT_FAKE_KIND_VERSION", "0.11.1")
    with pytest.raises(LabError) as e:
        tools.require_all()
    assert str(e.value).startswith("kind 0.11.1 is too old (labkit needs >= 0.20.0)")
    assert "kind.sigs.k8s.io" in str(e.value) and "\n" not in str(e.value)


def test_run_failure_is_laberror_with_last_stderr_line(fakes):
    with pytest.raises(LabError) as e:
        tools.run(["kubectl", "--context", "kind-kind", "get", "nope", "-o", "json"])
    assert "failed (exit 1)" in str(e.value) and "nope not found" in str(e.value)
    assert tools.run(["kubectl", "get", "nope"], check=False).returncode == 1


def test_doctor_all_green(fakes):
    fakes.clusters("kind")
    checks = tools.doctor("kind")
    names = [c.name for c in checks]
    assert all(c.ok for c in checks), checks
    assert names[:4] == [
        "docker >= 20.10.0 (found 28.3.2)",
        "kind >= 0.20.0 (found 0.29.0)",
        "kubectl >= 1.27.0 (found 1.33.1)",
        "helm >= 3.12.0 (found 3.18.4)",
    ]
    assert "kind cluster 'kind' exists" in names
    assert "nodes Ready (3/3)" in names and "cilium agents ready (3/3)" in names
    assert "cilium version 1.17.6 (found v1.17.6)" in names
    assert "hubble relay ready (1/1)" in names and "lab pods Ready in namespace native (4/4)" in names
    text = format_checks(checks)
    assert text.splitlines()[0] == "ok    docker >= 20.10.0 (found 28.3.2)"


def test_doctor_no_cluster(fakes):
    checks = tools.doctor("kind")
    assert checks[-1] == Check("kind cluster 'kind' exists", False, fix="run `labkit up --backend kind --lab kind`")
    assert "FAIL  kind cluster 'kind' exists" in format_checks(checks)


def test_doctor_engine_down(fakes):
    fakes.env("LABKIT_FAKE_DOCKER_DOWN", "1")
    checks = tools.doctor()
    assert checks[-1].name == "docker engine reachable" and checks[-1].ok is False


def test_doctor_missing_tool_stops_before_cluster_checks(fakes, tmp_path):
    fakes.hide("kubectl", tmp_path)
    checks = tools.doctor()
    bad = [c for c in checks if not c.ok]
    assert bad[0].name == "kubectl >= 1.27.0" and "kubernetes.io/docs/tasks/tools" in bad[0].fix
    assert checks[-1] == Check("cluster checks", False, fix="fix the tools above first")
    assert not any(c[0] == "docker" for c in fakes.calls("docker") if "info" in c)
