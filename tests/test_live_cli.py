"""The labkit command on the kind backend, against the fake docker/kind/helm/kubectl."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent / "fixtures" / "live"))
from fakes import Fakes

from labkit.cli import main


@pytest.fixture
def fakes(monkeypatch, tmp_path):
    monkeypatch.delenv("LABKIT_LAB", raising=False)
    return Fakes(monkeypatch, tmp_path)


def test_up_status_exec_down_on_kind(fakes, capsys):
    fakes.clusters()
    assert main(["up", "--backend", "kind"]) == 0
    kind_yaml = str(Path(__file__).resolve().parents[1] / "cluster" / "kind.yaml")
    assert any(
        c[:6] == ["kind", "create", "cluster", "--name", "kind", "--config"] and c[6] == kind_yaml
        for c in fakes.calls("kind")
    )
    assert any("install" in c and "cilium/cilium" in c and "1.17.6" in c for c in fakes.calls("helm"))
    capsys.readouterr()
    assert main(["status", "--backend", "kind", "-o", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["backend"] == "kind" and [n["name"] for n in doc["nodes"]] == [
        "kind-control-plane",
        "kind-worker",
        "kind-worker2",
    ]
    assert main(["exec", "--backend", "kind", "kind-worker", "--", "ip", "route"]) == 0
    assert fakes.calls("docker")[-1] == ["docker", "exec", "-i", "kind-worker", "ip", "route"]
    assert main(["down", "--backend", "kind"]) == 0
    assert ["kind", "delete", "cluster", "--name", "kind"] in fakes.calls("kind")


def test_embedded_only_options_are_refused_on_kind(fakes, capsys):
    assert main(["up", "--backend", "kind", "--set", "socketLB.enabled=false"]) == 2
    assert "embedded backend" in capsys.readouterr().err
    assert fakes.calls("kind") == []


def test_missing_tool_is_one_line(fakes, tmp_path, capsys):
    fakes.hide("helm", tmp_path)
    code = main(["up", "--backend", "kind"])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1 and "helm" in err


def test_blog_commands_on_kind_print_what_cilium_prints(fakes, capsys):
    from labkit.live.backend import KindBackend

    expected = KindBackend().maps("kind-worker").text("endpoints")
    assert main(["bpf", "endpoint", "list", "--backend", "kind", "--node", "kind-worker"]) == 0
    assert capsys.readouterr().out.rstrip("\n") == expected.rstrip("\n")
    assert fakes.calls("kubectl")[-1][-4:] == ["cilium-dbg", "bpf", "endpoint", "list"]
    assert main(["bpf", "ct", "flush", "global", "--backend", "kind", "--node", "kind-worker"]) == 0
    assert fakes.calls("kubectl")[-1][-5:] == ["cilium-dbg", "bpf", "ct", "flush", "global"]
    assert main(["service", "list", "--backend", "kind", "--node", "kind-worker", "-o", "json"]) == 0
    assert fakes.calls("kubectl")[-1][-5:] == ["cilium-dbg", "service", "list", "-o", "json"]
    capsys.readouterr()
    before = len(fakes.calls("kubectl"))
    assert main(["bpf", "nat", "list", "--backend", "kind"]) == 0  # no --node: every agent in turn
    out = capsys.readouterr().out
    assert [line for line in out.splitlines() if line.startswith("== ")] == [
        "== kind-control-plane",
        "== kind-worker",
        "== kind-worker2",
    ]
    nat_calls = [c for c in fakes.calls("kubectl")[before:] if c[-3:] == ["bpf", "nat", "list"]]
    assert len(nat_calls) == 3
