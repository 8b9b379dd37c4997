"""The lab cluster as declared in ``cluster/``: kind config, Cilium helm values, manifests.

Both backends read these same files. This module only parses and validates them into plain
dataclasses; where the cluster is laid out (IPs, nodes, names) is :mod:`labkit.plan`'s job.
A value the embedded backend cannot honour is a :class:`LabError` naming that value.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .errors import LabError

REPO = Path(__file__).resolve().parent.parent
CLUSTER_DIR = REPO / "cluster"

# Kubernetes object names (RFC 1123 labels / subdomains): also what keeps them safe as
# parts of namespace and file names.
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")

# Images the embedded backend can run, by repository (registry and tag ignored).
APPS = {"traefik/whoami": "whoami", "nicolaka/netshoot": "idle"}


@dataclass(frozen=True)
class NodeSpec:
    name: str
    role: str  # "control-plane" or "worker"


@dataclass(frozen=True)
class ClusterSpec:
    """cluster/kind.yaml."""

    name: str
    nodes: tuple[NodeSpec, ...]
    pod_subnet: str
    service_subnet: str
    node_cidr_mask: int = 24  # kube-controller-manager --node-cidr-mask-size default


@dataclass(frozen=True)
class DatapathSpec:
    """The datapath features of cluster/cilium-values.yaml that the embedded backend models."""

    routing_mode: str  # routingMode
    native_cidr: str  # ipv4NativeRoutingCIDR
    auto_direct_node_routes: bool
    endpoint_routes: bool  # endpointRoutes.enabled
    kube_proxy_replacement: bool
    socket_lb: bool  # socketLB.enabled (defaults to kubeProxyReplacement)
    bpf_masquerade: bool  # bpf.masquerade


@dataclass(frozen=True)
class ServicePort:
    port: int
    target_port: int
    protocol: str  # TCP or UDP
    name: str = ""


@dataclass(frozen=True)
class ServiceSpec:
    namespace: str
    name: str
    type: str
    selector: tuple[tuple[str, str], ...]
    ports: tuple[ServicePort, ...]
    cluster_ip: str | None = None
    labels: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class AntiAffinityTerm:
    """A requiredDuringScheduling podAntiAffinity term with topologyKey hostname."""

    match_labels: tuple[tuple[str, str], ...]
    match_expressions: tuple[tuple[str, str, tuple[str, ...]], ...]  # (key, operator, values)

    def matches(self, labels: dict[str, str]) -> bool:
        if any(labels.get(k) != v for k, v in self.match_labels):
            return False
        for key, op, values in self.match_expressions:
            has, val = key in labels, labels.get(key)
            ok = {
                "In": has and val in values,
                "NotIn": not (has and val in values),
                "Exists": has,
                "DoesNotExist": not has,
            }[op]
            if not ok:
                return False
        return True


@dataclass(frozen=True)
class PodSpec:
    """One pod to run: a bare Pod, or one replica template of a Deployment."""

    namespace: str
    name: str  # pod name (for a Deployment: the Deployment's name)
    labels: tuple[tuple[str, str], ...]
    image: str
    app: str  # "whoami" or "idle"
    port: int = 80  # whoami's listening port
    node_name: str | None = None
    tolerates_control_plane: bool = False
    anti_affinity: tuple[AntiAffinityTerm, ...] = ()
    owner: str = ""  # Deployment name, "" for a bare Pod
    replicas: int = 1


@dataclass
class Manifests:
    """Objects from cluster/manifests (or any files given to ``apply``)."""

    namespaces: list[str] = field(default_factory=list)
    pods: list[PodSpec] = field(default_factory=list)  # bare pods and deployments
    services: list[ServiceSpec] = field(default_factory=list)


# --------------------------------------------------------------------------- loading


def _load_yaml_docs(path: Path) -> list[dict]:
    try:
        text = path.read_text()
    except OSError as e:
        raise LabError(f"cannot read {path}: {e.strerror}; check the path") from None
    try:
        docs = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise LabError(f"{path}:{where} is not valid YAML ({getattr(e, 'problem', e)}); fix the file") from None
    for d in docs:
        if not isinstance(d, dict):
            raise LabError(f"{path}: each YAML document must be a mapping, got {type(d).__name__}")
    return docs


def _get(d: dict, dotted: str, default: Any = None) -> Any:
    cur: Any = d
    for part in dotted.split("."):
        if not isinstance(cur, dict) or part not in cur:
            return default
        cur = cur[part]
    return cur


def _cidr(value: Any, what: str, where: Path) -> str:
    try:
        return str(ipaddress.IPv4Network(str(value)))
    except ValueError:
        raise LabError(f"{where}: {what} {value!r} is not an IPv4 CIDR") from None


def load_cluster(path: Path = CLUSTER_DIR / "kind.yaml") -> ClusterSpec:
    docs = _load_yaml_docs(path)
    if len(docs) != 1 or docs[0].get("kind") != "Cluster":
        raise LabError(f"{path}: expected one kind 'Cluster' document")
    d = docs[0]
    name = str(d.get("name", "kind"))
    if not _DNS_LABEL.match(name):
        raise LabError(f"{path}: cluster name {name!r} is not a valid name")
    net = d.get("networking") or {}
    if not net.get("disableDefaultCNI"):
        raise LabError(f"{path}: networking.disableDefaultCNI must be true (Cilium is the CNI)")
    nodes_raw = d.get("nodes") or [{"role": "control-plane"}]
    roles = [str((n or {}).get("role", "")) for n in nodes_raw]
    if any(r not in ("control-plane", "worker") for r in roles):
        raise LabError(f"{path}: node roles must be control-plane or worker, got {roles}")
    if "control-plane" not in roles:
        raise LabError(f"{path}: the cluster needs a control-plane node")
    # kind's node naming: <cluster>-control-plane, -control-plane2, <cluster>-worker, -worker2 ...
    nodes, seen = [], {"control-plane": 0, "worker": 0}
    for role in sorted(roles, key=lambda r: r != "control-plane"):
        seen[role] += 1
        suffix = "" if seen[role] == 1 else str(seen[role])
        nodes.append(NodeSpec(f"{name}-{role}{suffix}", role))
    pod_subnet = _cidr(net.get("podSubnet", "10.244.0.0/16"), "podSubnet", path)
    svc_subnet = _cidr(net.get("serviceSubnet", "10.96.0.0/16"), "serviceSubnet", path)
    spec = ClusterSpec(name, tuple(nodes), pod_subnet, svc_subnet)
    if ipaddress.IPv4Network(pod_subnet).prefixlen > spec.node_cidr_mask:
        raise LabError(f"{path}: podSubnet {pod_subnet} is smaller than one /{spec.node_cidr_mask} node CIDR")
    if 2 ** (spec.node_cidr_mask - ipaddress.IPv4Network(pod_subnet).prefixlen) < len(nodes):
        raise LabError(f"{path}: podSubnet {pod_subnet} has fewer /{spec.node_cidr_mask} CIDRs than nodes")
    return spec


def load_values(
    path: Path = CLUSTER_DIR / "cilium-values.yaml", overrides: dict[str, Any] | None = None
) -> DatapathSpec:
    """Read the helm values; ``overrides`` are ``--set``-style dotted keys (lab options)."""
    docs = _load_yaml_docs(path)
    if len(docs) != 1:
        raise LabError(f"{path}: expected one YAML document of helm values")
    values = docs[0]
    for key, val in (overrides or {}).items():
        _set_dotted(values, key, val)

    def flag(key: str, default: bool) -> bool:
        v = _get(values, key, default)
        if isinstance(v, str) and v.lower() in ("true", "false"):
            v = v.lower() == "true"
        if not isinstance(v, bool):
            raise LabError(f"{path}: {key} must be true or false, got {v!r}")
        return v

    mode = str(_get(values, "routingMode", "tunnel") or "tunnel")
    if mode != "native":
        raise LabError(
            f"{path}: routingMode={mode} is not supported by the embedded backend (it models native routing); "
            "set routingMode=native"
        )
    if _get(values, "tunnelProtocol") not in (None, ""):
        raise LabError(f"{path}: tunnelProtocol is not supported by the embedded backend (native routing only)")
    if str(_get(values, "cni.chainingMode", "none") or "none") != "none":
        raise LabError(f"{path}: cni.chainingMode is not supported by the embedded backend")
    dp_mode = _get(values, "bpf.datapathMode", "veth")
    if dp_mode != "veth":
        raise LabError(f"{path}: bpf.datapathMode={dp_mode} is not supported (the kernel has no netkit); use veth")
    native = _get(values, "ipv4NativeRoutingCIDR")
    if not native:
        raise LabError(f"{path}: ipv4NativeRoutingCIDR must be set with routingMode=native")
    # The embedded topology always has direct node routes and one /32 route per pod: a lab
    # built from other values would differ silently, so say so instead.
    for key in ("autoDirectNodeRoutes", "endpointRoutes.enabled"):
        if not flag(key, False):
            raise LabError(
                f"{path}: {key}=false is not supported by the embedded backend (it builds "
                f"{'direct routes between nodes' if key == 'autoDirectNodeRoutes' else 'one /32 route per pod'}); "
                f"set {key}=true"
            )
    kpr = flag("kubeProxyReplacement", False)
    masq = flag("bpf.masquerade", False)
    if masq and not kpr:
        raise LabError(f"{path}: bpf.masquerade=true requires kubeProxyReplacement=true (as in Cilium)")
    return DatapathSpec(
        routing_mode=mode,
        native_cidr=_cidr(native, "ipv4NativeRoutingCIDR", path),
        auto_direct_node_routes=flag("autoDirectNodeRoutes", False),
        endpoint_routes=flag("endpointRoutes.enabled", False),
        kube_proxy_replacement=kpr,
        socket_lb=flag("socketLB.enabled", kpr),
        bpf_masquerade=masq,
    )


def _set_dotted(values: dict, key: str, val: Any) -> None:
    if not re.match(r"^[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)*$", key):
        raise LabError(f"option {key!r} is not a helm value path like socketLB.enabled")
    if isinstance(val, str):
        val = yaml.safe_load(val) if val else val
    cur = values
    parts = key.split(".")
    for p in parts[:-1]:
        cur = cur.setdefault(p, {})
        if not isinstance(cur, dict):
            raise LabError(f"option {key!r}: {p} is not a mapping in the helm values")
    cur[parts[-1]] = val


def parse_set(items: Iterable[str]) -> dict[str, Any]:
    """``["socketLB.enabled=false"]`` -> ``{"socketLB.enabled": "false"}`` (CLI ``--set``)."""
    out = {}
    for item in items:
        key, sep, val = item.partition("=")
        if not sep:
            raise LabError(f"--set {item!r}: expected KEY=VALUE, e.g. --set socketLB.enabled=false")
        out[key.strip()] = val.strip()
    return out


# --------------------------------------------------------------------------- manifests


def manifest_files(paths: Iterable[str | Path]) -> list[Path]:
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            files += sorted(f for f in p.iterdir() if f.suffix in (".yaml", ".yml"))
        elif p.exists():
            files.append(p)
        else:
            raise LabError(f"{p}: no such file or directory")
    if not files:
        raise LabError("no manifest files (*.yaml) found in " + ", ".join(map(str, paths)))
    return files


def load_manifests(paths: Iterable[str | Path]) -> Manifests:
    """Parse Namespace, Pod, Deployment and Service objects; anything else is an error."""
    out = Manifests()
    seen: set[tuple[str, str, str]] = set()
    for f in manifest_files(paths):
        for doc in _load_yaml_docs(f):
            kind = doc.get("kind")
            meta = doc.get("metadata") or {}
            name = meta.get("name")
            ns = meta.get("namespace", "default")
            where = f"{f}: {kind} {name!r}"
            if not isinstance(name, str) or not _DNS_SUBDOMAIN.match(name):
                raise LabError(f"{f}: {kind} has a missing or invalid metadata.name {name!r}")
            if not isinstance(ns, str) or not _DNS_LABEL.match(ns):
                raise LabError(f"{where}: invalid namespace {ns!r}")
            ident = (str(kind), ns, name)
            if ident in seen:
                raise LabError(f"{where}: defined twice in namespace {ns}")
            seen.add(ident)
            if kind == "Namespace":
                if not _DNS_LABEL.match(name):
                    raise LabError(f"{where}: invalid namespace name")
                out.namespaces.append(name)
            elif kind == "Pod":
                out.pods.append(_pod(where, ns, name, meta, doc.get("spec") or {}))
            elif kind == "Deployment":
                out.pods.append(_deployment(where, ns, name, doc.get("spec") or {}))
            elif kind == "Service":
                out.services.append(_service(where, ns, name, meta, doc.get("spec") or {}))
            else:
                raise LabError(f"{f}: kind {kind!r} is not supported by labkit (Namespace, Pod, Deployment, Service)")
    return out


def _labels(where: str, d: Any) -> tuple[tuple[str, str], ...]:
    if d is None:
        return ()
    if not isinstance(d, dict):
        raise LabError(f"{where}: labels must be a mapping")
    return tuple(sorted((str(k), str(v)) for k, v in d.items()))


def image_app(where: str, image: str) -> str:
    repo = image.split("@")[0]
    last = repo.rsplit("/", 1)[-1]
    if ":" in last:
        repo = repo[: repo.rindex(":")]
    for prefix in ("docker.io/library/", "docker.io/", "registry-1.docker.io/"):
        if repo.startswith(prefix):
            repo = repo[len(prefix) :]
    if repo not in APPS:
        known = ", ".join(APPS)
        raise LabError(f"{where}: image {image!r} cannot run on the embedded backend (it runs {known})")
    return APPS[repo]


def _pod(where: str, ns: str, name: str, meta: dict, spec: dict, owner: str = "", replicas: int = 1) -> PodSpec:
    if not _DNS_LABEL.match(name):
        raise LabError(f"{where}: pod name {name!r} must be a DNS label (a-z, 0-9, -)")
    containers = spec.get("containers")
    if not isinstance(containers, list) or not containers or not isinstance(containers[0], dict):
        raise LabError(f"{where}: spec.containers must list at least one container")
    if len(containers) > 1:
        raise LabError(f"{where}: only one container per pod is supported by the embedded backend")
    c = containers[0]
    image = c.get("image")
    if not isinstance(image, str) or not image:
        raise LabError(f"{where}: container has no image")
    app = image_app(where, image)
    port = 80
    args = [str(a) for a in (c.get("args") or [])]
    if app == "whoami" and "--port" in args:
        try:
            port = int(args[args.index("--port") + 1])
        except (IndexError, ValueError):
            raise LabError(f"{where}: whoami --port needs a number") from None
    node_name = spec.get("nodeName")
    if node_name is not None and not (isinstance(node_name, str) and _DNS_SUBDOMAIN.match(node_name)):
        raise LabError(f"{where}: invalid nodeName {node_name!r}")
    tol = any(
        (t or {}).get("operator") == "Exists"
        and (t or {}).get("key") in (None, "node-role.kubernetes.io/control-plane")
        or (t or {}).get("key") == "node-role.kubernetes.io/control-plane"
        for t in spec.get("tolerations") or []
    )
    terms = []
    anti = _get(spec, "affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution") or []
    for t in anti:
        if (t or {}).get("topologyKey") != "kubernetes.io/hostname":
            raise LabError(f"{where}: podAntiAffinity topologyKey must be kubernetes.io/hostname")
        sel = t.get("labelSelector") or {}
        exprs = []
        for e in sel.get("matchExpressions") or []:
            op = e.get("operator")
            if op not in ("In", "NotIn", "Exists", "DoesNotExist"):
                raise LabError(f"{where}: matchExpressions operator {op!r} is not supported")
            exprs.append((str(e.get("key")), op, tuple(str(v) for v in e.get("values") or [])))
        terms.append(AntiAffinityTerm(_labels(where, sel.get("matchLabels")), tuple(exprs)))
    return PodSpec(
        ns, name, _labels(where, meta.get("labels")), image, app, port, node_name, tol, tuple(terms), owner, replicas
    )


def _deployment(where: str, ns: str, name: str, spec: dict) -> PodSpec:
    replicas = spec.get("replicas", 1)
    if not isinstance(replicas, int) or replicas < 0:
        raise LabError(f"{where}: replicas must be a whole number >= 0")
    tmpl = spec.get("template") or {}
    tmeta = tmpl.get("metadata") or {}
    sel = _labels(where, _get(spec, "selector.matchLabels"))
    labels = dict(_labels(where, tmeta.get("labels")))
    if not sel or any(labels.get(k) != v for k, v in sel):
        raise LabError(f"{where}: spec.selector.matchLabels must match the template's labels")
    if len(name) > 47:
        raise LabError(f"{where}: Deployment name is too long for pod names")
    return _pod(where, ns, name, tmeta, tmpl.get("spec") or {}, owner=name, replicas=replicas)


def _service(where: str, ns: str, name: str, meta: dict, spec: dict) -> ServiceSpec:
    if not _DNS_LABEL.match(name):
        raise LabError(f"{where}: service name must be a DNS label")
    stype = spec.get("type", "ClusterIP")
    if stype != "ClusterIP":
        raise LabError(f"{where}: service type {stype} is not supported by the embedded backend (ClusterIP only)")
    ports = []
    for p in spec.get("ports") or []:
        proto = str(p.get("protocol", "TCP"))
        if proto not in ("TCP", "UDP"):
            raise LabError(f"{where}: protocol {proto} is not supported (TCP, UDP)")
        port = p.get("port")
        target = p.get("targetPort", port)
        if not all(isinstance(x, int) and 0 < x < 65536 for x in (port, target)):
            raise LabError(f"{where}: port and targetPort must be numbers 1-65535 (named ports are not supported)")
        ports.append(ServicePort(port, target, proto, str(p.get("name", ""))))
    if not ports:
        raise LabError(f"{where}: spec.ports must list at least one port")
    cip = spec.get("clusterIP")
    if cip is not None:
        try:
            cip = str(ipaddress.IPv4Address(cip))
        except ValueError:
            raise LabError(
                f"{where}: clusterIP {cip!r} is not an IPv4 address (headless services are not supported)"
            ) from None
    return ServiceSpec(
        ns, name, stype, _labels(where, spec.get("selector")), tuple(ports), cip, _labels(where, meta.get("labels"))
    )
