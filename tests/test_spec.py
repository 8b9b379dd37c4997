"""cluster/ as the single source of truth: parsing, and the blog's exact values."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import yaml

from labkit import spec
from labkit.errors import LabError

DATA = Path(__file__).parent / "data"


def _blog_sets() -> dict[str, object]:
    """Parse the blog's helm command line (test data) into dotted key -> value."""
    text = (DATA / "blog-helm-install.txt").read_text().replace("\\\n", " ")
    words = shlex.split(text)
    assert words[:3] == ["helm", "install", "cilium"] and "1.17.6" in words
    sets = {}
    for i, w in enumerate(words):
        if w == "--set":
            key, _, val = words[i + 1].partition("=")
            if val.startswith("{") and val.endswith("}"):
                # helm list syntax; "\," escapes a comma inside an item
                items = re.split(r"(?<!\\),", val[1:-1])
                sets[key] = [x.replace("\\,", ",") for x in items]
            else:
                sets[key] = yaml.safe_load(val)
    return sets


def _flatten(d: dict, prefix: str = "") -> dict[str, object]:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def test_values_are_the_blogs_helm_command_exactly():
    values = yaml.safe_load((spec.CLUSTER_DIR / "cilium-values.yaml").read_text())
    assert _flatten(values) == _blog_sets()


def test_blog_values_give_the_native_routing_datapath():
    dp = spec.load_values()
    assert dp.routing_mode == "native" and dp.native_cidr == "10.244.0.0/16"
    assert dp.auto_direct_node_routes and dp.endpoint_routes
    assert dp.kube_proxy_replacement and dp.socket_lb and dp.bpf_masquerade


def test_set_overrides_and_unsupported_values(tmp_path):
    assert spec.load_values(overrides=spec.parse_set(["socketLB.enabled=false"])).socket_lb is False
    with pytest.raises(LabError, match="routingMode=tunnel"):
        spec.load_values(overrides={"routingMode": "tunnel"})
    for key in ("autoDirectNodeRoutes", "endpointRoutes.enabled"):
        with pytest.raises(LabError, match=f"{key}=false is not supported"):
            spec.load_values(overrides={key: "false"})
    with pytest.raises(LabError, match="netkit"):
        spec.load_values(overrides={"bpf.datapathMode": "netkit"})
    with pytest.raises(LabError, match="KEY=VALUE"):
        spec.parse_set(["socketLB.enabled"])


def test_kind_config():
    c = spec.load_cluster()
    assert [n.name for n in c.nodes] == ["kind-control-plane", "kind-worker", "kind-worker2"]
    assert (c.pod_subnet, c.service_subnet) == ("10.244.0.0/16", "10.96.0.0/12")
    raw = yaml.safe_load((spec.CLUSTER_DIR / "kind.yaml").read_text())
    assert raw["networking"]["disableDefaultCNI"] is True and raw["networking"]["kubeProxyMode"] == "none"


def test_manifests_are_the_blogs():
    m = spec.load_manifests([spec.CLUSTER_DIR / "manifests"])
    assert m.namespaces == ["native"]
    web = next(p for p in m.pods if p.name == "webpod")
    assert (web.owner, web.replicas, web.image, web.app, web.port) == ("webpod", 2, "traefik/whoami", "whoami", 80)
    # The blog's anti-affinity selects app=sample-app: kept as written.
    (term,) = web.anti_affinity
    assert term.match_expressions == (("app", "In", ("sample-app",)),)
    assert not term.matches({"app": "webpod"}) and term.matches({"app": "sample-app"})
    pods = {p.name: p for p in m.pods}
    assert pods["curl-pod"].node_name == "kind-control-plane" and pods["curl-pod"].app == "idle"
    assert pods["client-pod"].node_name == "kind-worker"
    (svc,) = m.services
    assert (svc.namespace, svc.name, svc.type, svc.selector) == ("native", "webpod", "ClusterIP", (("app", "webpod"),))
    assert svc.ports[0].port == 80 and svc.ports[0].target_port == 80 and svc.ports[0].protocol == "TCP"
    assert all(p.namespace == "native" for p in m.pods)


def _write(tmp_path: Path, text: str) -> Path:
    f = tmp_path / "m.yaml"
    f.write_text(text)
    return f


POD = """apiVersion: v1
kind: Pod
metadata: {{name: {name}, namespace: default}}
spec:
  containers: [{{name: c, image: {image}}}]
"""


@pytest.mark.parametrize(
    "text, message",
    [
        ("kind: Pod\nmetadata: {name: x\n", "not valid YAML"),
        ("- just\n- a list\n", "must be a mapping"),
        ("kind: ConfigMap\nmetadata: {name: x}\n", "kind 'ConfigMap' is not supported"),
        (POD.format(name="x", image="nginx:1.25"), "image 'nginx:1.25' cannot run"),
        (POD.format(name="x;rm", image="nicolaka/netshoot"), "invalid metadata.name"),
        (
            POD.format(name="x", image="nicolaka/netshoot") + "---\n" + POD.format(name="x", image="nicolaka/netshoot"),
            "defined twice",
        ),
        (
            "apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec: {type: NodePort, ports: [{port: 80}]}\n",
            "ClusterIP only",
        ),
    ],
)
def test_bad_manifests_are_one_clear_error(tmp_path, text, message):
    with pytest.raises(LabError, match=message) as e:
        spec.load_manifests([_write(tmp_path, text)])
    assert "\n" not in str(e.value)


def test_missing_path_is_an_error(tmp_path):
    with pytest.raises(LabError, match="no such file"):
        spec.load_manifests([tmp_path / "nope.yaml"])


def test_image_names_with_registry_and_tag():
    assert spec.image_app("x", "docker.io/traefik/whoami:v1.10") == "whoami"
    assert spec.image_app("x", "nicolaka/netshoot@sha256:abc") == "idle"
