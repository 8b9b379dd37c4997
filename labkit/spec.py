"""The lab cluster as declared in ``cluster/``: kind config, Cilium helm values, manifests.

Both backends read these same files. This module only parses and validates them into plain
dataclasses; where the cluster is laid out (IPs, nodes, names) is :mod:`labkit.plan`'s job.

Everything is checked before anything of a lab changes, and every failure is one line that
names the file (or the ``--set``), the object and the field:

- YAML is read with bounds (file size, documents, aliases, expanded size, depth), so a
  small file cannot expand into gigabytes (an alias bomb);
- manifests are checked against Kubernetes' own schemas (:mod:`labkit.kubeschema`), then
  against what labkit runs (images, kinds, label syntax, replicas);
- helm values are honoured or refused: a key of Cilium's chart the embedded backend models
  is honoured, the blog's other values are accepted as they are, any other value of the
  chart is refused, and a key the chart does not know is ignored with a warning, as helm
  ignores it.
"""

from __future__ import annotations

import ipaddress
import math
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from . import kubeschema
from .cilium import chart
from .errors import LabError, notice

REPO = Path(__file__).resolve().parent.parent
CLUSTER_DIR = REPO / "cluster"

# Bounds of what labkit reads (far above the blog's files, far below what hurts a machine).
MAX_FILE_BYTES = 1 << 20  # one YAML file
MAX_DOCUMENTS = 256  # per file
MAX_OBJECTS = 1000  # per apply
MAX_ALIASES = 64  # YAML aliases (*name) per file
MAX_NODES = 100_000  # YAML nodes per document once aliases are expanded
MAX_DEPTH = 64  # YAML nesting
MAX_REPLICAS = 1000  # per Deployment; the nodes' CIDRs and maxPods bound it further (plan.py)

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
    hubble: bool = False  # hubble.enabled: the hubble-peer service
    hubble_relay: bool = False  # hubble.relay.enabled
    hubble_ui: bool = False  # hubble.ui.enabled


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


def show_path(path: Path) -> str:
    """``path`` as the user would name it: relative to the current directory if inside it."""
    try:
        return os.path.relpath(path) if Path(path).resolve().is_relative_to(Path.cwd()) else str(path)
    except (OSError, ValueError):
        return str(path)


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader, counting aliases as it composes."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.aliases = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            self.aliases += 1
            if self.aliases > MAX_ALIASES:
                raise _TooBig(f"it uses more than {MAX_ALIASES} YAML aliases")
        return super().compose_node(parent, index)


class _TooBig(Exception):
    pass


def _expanded_size(root: yaml.Node) -> int:
    """Nodes of ``root`` once every alias is expanded (shared nodes counted each time they
    appear), without expanding anything; a recursive alias or a too-deep tree is refused."""
    sizes: dict[int, int] = {}
    active: set[int] = set()

    def size(node: yaml.Node, depth: int) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in active:
            raise _TooBig("an alias refers to itself (a recursive structure)")
        if depth > MAX_DEPTH:
            raise _TooBig(f"it nests deeper than {MAX_DEPTH} levels")
        active.add(key)
        n = 1
        if isinstance(node, yaml.SequenceNode):
            n += sum(size(c, depth + 1) for c in node.value)
        elif isinstance(node, yaml.MappingNode):
            n += sum(size(k, depth + 1) + size(v, depth + 1) for k, v in node.value)
        active.discard(key)
        sizes[key] = n = min(n, MAX_NODES + 1)
        return n

    return size(root, 0)


def _load_yaml_docs(path: Path) -> list[dict]:
    """The YAML documents of ``path`` (each a mapping), read within labkit's bounds."""
    shown = show_path(path)
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_FILE_BYTES + 1)
    except OSError as e:
        raise LabError(f"cannot read {shown}: {e.strerror}; check the path") from None
    if len(raw) > MAX_FILE_BYTES:
        raise LabError(f"{shown} is larger than {MAX_FILE_BYTES >> 20} MiB; labkit reads smaller YAML files")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise LabError(f"{shown} is not UTF-8 text (byte {e.start}); give a YAML file") from None
    if "\0" in text:
        raise LabError(f"{shown} holds a NUL byte; give a YAML text file")
    docs: list[Any] = []
    loader: _Loader | None = None
    try:
        loader = _Loader(text)
        while loader.check_node():
            node = loader.get_node()
            if node is None:
                continue
            if len(docs) >= MAX_DOCUMENTS:
                raise _TooBig(f"it has more than {MAX_DOCUMENTS} documents")
            if _expanded_size(node) > MAX_NODES:
                raise _TooBig(f"a document expands to more than {MAX_NODES} YAML nodes (aliases)")
            doc = loader.construct_document(node)
            if doc is not None:
                docs.append(doc)
    except _TooBig as e:
        raise LabError(f"{shown} is refused: {e}; labkit reads plain manifests") from None
    except RecursionError:
        raise LabError(f"{shown} is refused: it nests deeper than {MAX_DEPTH} levels") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        problem = " ".join(str(getattr(e, "problem", None) or e).split())[:160]
        raise LabError(f"{shown}:{where} is not valid YAML ({problem}); fix the file") from None
    finally:
        if loader is not None:
            loader.dispose()
    for i, d in enumerate(docs):
        if not isinstance(d, dict):
            raise LabError(f"{shown}: document {i + 1} must be a mapping, got {type(d).__name__}")
    return docs


def _get(d: dict, dotted: str, default: Any = None) -> Any:
    cur: Any = d
    for part in dotted.split("."):
        if not isinstance(cur, dict) or part not in cur:
            return default
        cur = cur[part]
    return cur


def _cidr(value: Any, what: str, where: Path | str) -> str:
    try:
        return str(ipaddress.IPv4Network(str(value)))
    except ValueError:
        raise LabError(f"{where}: {what} {value!r} is not an IPv4 CIDR") from None


def load_cluster(path: Path = CLUSTER_DIR / "kind.yaml") -> ClusterSpec:
    shown = show_path(path)
    docs = _load_yaml_docs(path)
    if len(docs) != 1 or docs[0].get("kind") != "Cluster":
        raise LabError(f"{shown}: expected one kind 'Cluster' document")
    d = docs[0]
    name = d.get("name", "kind")
    if not isinstance(name, str) or not _DNS_LABEL.match(name):
        raise LabError(f"{shown}: cluster name {_q(name)} is not a valid name")
    net = d.get("networking") or {}
    if not isinstance(net, dict):
        raise LabError(f"{shown}: networking must be a mapping")
    if net.get("disableDefaultCNI") is not True:
        raise LabError(f"{shown}: networking.disableDefaultCNI must be true (Cilium is the CNI)")
    nodes_raw = d.get("nodes") or [{"role": "control-plane"}]
    if not isinstance(nodes_raw, list) or not all(isinstance(n, dict | None) for n in nodes_raw):
        raise LabError(f"{shown}: nodes must be a list of mappings with a role")
    if len(nodes_raw) > 16:
        raise LabError(f"{shown}: {len(nodes_raw)} nodes is more than labkit builds (at most 16)")
    roles = [str((n or {}).get("role", "")) for n in nodes_raw]
    if any(r not in ("control-plane", "worker") for r in roles):
        raise LabError(f"{shown}: node roles must be control-plane or worker, got {roles}")
    if "control-plane" not in roles:
        raise LabError(f"{shown}: the cluster needs a control-plane node")
    # kind's node naming: <cluster>-control-plane, -control-plane2, <cluster>-worker, -worker2 ...
    nodes, seen = [], {"control-plane": 0, "worker": 0}
    for role in sorted(roles, key=lambda r: r != "control-plane"):
        seen[role] += 1
        suffix = "" if seen[role] == 1 else str(seen[role])
        nodes.append(NodeSpec(f"{name}-{role}{suffix}", role))
    pod_subnet = _cidr(net.get("podSubnet", "10.244.0.0/16"), "podSubnet", shown)
    svc_subnet = _cidr(net.get("serviceSubnet", "10.96.0.0/16"), "serviceSubnet", shown)
    spec = ClusterSpec(name, tuple(nodes), pod_subnet, svc_subnet)
    if ipaddress.IPv4Network(pod_subnet).prefixlen > spec.node_cidr_mask:
        raise LabError(f"{shown}: podSubnet {pod_subnet} is smaller than one /{spec.node_cidr_mask} node CIDR")
    if 2 ** (spec.node_cidr_mask - ipaddress.IPv4Network(pod_subnet).prefixlen) < len(nodes):
        raise LabError(f"{shown}: podSubnet {pod_subnet} has fewer /{spec.node_cidr_mask} CIDRs than nodes")
    return spec


# --------------------------------------------------------------------------- helm values

# The values the embedded backend models (the rest of DatapathSpec follows from them), each
# with what it accepts; anything else of Cilium's chart is accepted only as the blog set it.
_BOOL = (True, False)
MODELLED: dict[str, tuple[Any, ...] | None] = {  # None: checked in load_values
    "routingMode": ("native",),
    "ipv4NativeRoutingCIDR": None,
    "autoDirectNodeRoutes": (True,),
    "endpointRoutes.enabled": (True,),
    "kubeProxyReplacement": (True,),
    "socketLB.enabled": _BOOL,
    "bpf.masquerade": _BOOL,
    "bpf.datapathMode": ("veth",),
    "cni.chainingMode": ("none",),
    "tunnelProtocol": ("",),
}
# Cilium's defaults of a few values labkit behaves as (setting them to these is honoured).
CILIUM_DEFAULTS: dict[str, Any] = {
    "enableIPv4Masquerade": True,
    "ipv4.enabled": True,
    "ipv6.enabled": False,
    "enableIPv6Masquerade": True,
}
_WHY = {
    "routingMode": "it models native routing; set routingMode=native",
    "autoDirectNodeRoutes": "it builds direct routes between nodes; set autoDirectNodeRoutes=true",
    "endpointRoutes.enabled": "it builds one /32 route per pod; set endpointRoutes.enabled=true",
    "kubeProxyReplacement": (
        "the cluster has no kube-proxy, and with the blog's installNoConntrackIptablesRules=true Cilium "
        "itself refuses to start without kubeProxyReplacement=true; try socketLB.enabled=false for per-packet "
        "service load balancing instead"
    ),
    "bpf.datapathMode": "the kernel has no netkit here; use veth",
    "cni.chainingMode": "Cilium is the only CNI of the lab",
    "tunnelProtocol": "it routes natively, without a tunnel",
}


def blog_values() -> dict[str, Any]:
    """The blog's helm values (cluster/cilium-values.yaml, a test keeps it exact), flattened."""
    docs = _load_yaml_docs(CLUSTER_DIR / "cilium-values.yaml")
    return flatten(docs[0]) if docs else {}


def flatten(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}`` (lists and scalars are leaves)."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, Mapping) and v:
            out.update(flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _as_bool(v: Any) -> Any:
    """helm's charts read "true"/"false" strings as booleans too."""
    if isinstance(v, str) and v.lower() in ("true", "false"):
        return v.lower() == "true"
    return v


def load_values(
    path: Path = CLUSTER_DIR / "cilium-values.yaml", overrides: Mapping[str, Any] | None = None
) -> DatapathSpec:
    """Read the helm values; ``overrides`` are ``--set``-style dotted keys (lab options).

    Every value is honoured or refused (one line naming it and where it came from: the
    file, or ``--set``); a key Cilium's chart does not know is ignored with a warning."""
    shown = show_path(path)
    docs = _load_yaml_docs(path)
    if len(docs) != 1:
        raise LabError(f"{shown}: expected one YAML document of helm values")
    values = docs[0]
    where: dict[str, str] = {k: f"{shown}: {k}" for k in flatten(values)}
    for key, raw in check_options(overrides or {}).items():
        val = parse_set_value(raw) if isinstance(raw, str) else raw
        _set_dotted(values, key, val)
        for k in [k for k in where if k == key or k.startswith(key + ".")]:
            del where[k]
        where[key] = f"--set {key}"
    flat = flatten(values)
    blog = blog_values()

    def say(key: str) -> str:
        return where.get(key, f"--set {key}")

    for key, val in flat.items():
        if not chart.known(key):
            notice(f"{say(key)}: {key} is not a value of Cilium's chart; helm ignores it, and so does labkit")
            continue
        val = _as_bool(val)
        if key in MODELLED:
            allowed = MODELLED[key]
            if allowed is not None and not any(_same(val, a) for a in allowed) and not (val is None and "" in allowed):
                if allowed == _BOOL:
                    raise LabError(f"{say(key)}={_show(val)}: must be true or false")
                raise LabError(
                    f"{say(key)}={_show(val)} is not supported by the embedded backend: {_WHY.get(key, 'it is fixed')}"
                )
            continue
        if key in blog and _same(val, blog[key]):
            continue
        if key in CILIUM_DEFAULTS and _same(val, CILIUM_DEFAULTS[key]):
            continue
        if key in blog:
            raise LabError(
                f"{say(key)}={_show(val)} is not modelled by the embedded backend (it runs the blog's "
                f"{key}={_show(blog[key])}); drop the --set or use --backend kind"
            )
        raise LabError(
            f"{say(key)}={_show(val)} is not modelled by the embedded backend; drop it or use --backend kind "
            f"(labkit models {', '.join(sorted(MODELLED))})"
        )

    def flag(key: str, default: bool) -> bool:
        v = _as_bool(flat.get(key, default))
        return bool(v)

    mode = str(flat.get("routingMode") or "tunnel")
    if mode != "native":
        raise LabError(f"{say('routingMode')}={mode} is not supported by the embedded backend: {_WHY['routingMode']}")
    native = flat.get("ipv4NativeRoutingCIDR")
    if not native:
        raise LabError(f"{shown}: ipv4NativeRoutingCIDR must be set with routingMode=native")
    for key in ("autoDirectNodeRoutes", "endpointRoutes.enabled", "kubeProxyReplacement"):
        if not flag(key, False):
            raise LabError(f"{say(key)}=false is not supported by the embedded backend: {_WHY[key]}")
    kpr = flag("kubeProxyReplacement", False)
    masq = flag("bpf.masquerade", False)
    if masq and not kpr:
        raise LabError(f"{say('bpf.masquerade')}=true requires kubeProxyReplacement=true (as in Cilium)")
    return DatapathSpec(
        routing_mode=mode,
        native_cidr=_cidr(native, "ipv4NativeRoutingCIDR", say("ipv4NativeRoutingCIDR")),
        auto_direct_node_routes=flag("autoDirectNodeRoutes", False),
        endpoint_routes=flag("endpointRoutes.enabled", False),
        kube_proxy_replacement=kpr,
        socket_lb=flag("socketLB.enabled", kpr),
        bpf_masquerade=masq,
        hubble=flag("hubble.enabled", True),
        hubble_relay=flag("hubble.enabled", True) and flag("hubble.relay.enabled", False),
        hubble_ui=flag("hubble.enabled", True) and flag("hubble.ui.enabled", False),
    )


def _same(a: Any, b: Any) -> bool:
    return _as_bool(a) == _as_bool(b) and type(_as_bool(a)) is type(_as_bool(b))


def _q(v: Any) -> str:
    """A value quoted for a message (strings in quotes), at most 60 characters."""
    text = repr(v)
    return text if len(text) <= 60 else text[:57] + "..."


def _show(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return "null"
    text = v if isinstance(v, str) else repr(v)
    return text if len(text) <= 60 else text[:57] + "..."


_KEY = re.compile(r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$")
_INT = re.compile(r"^[-+]?[0-9]+$")


def check_options(options: object) -> dict[str, Any]:
    """Lab options (``--set`` / ``up(options=...)``): helm value paths to scalars."""
    if not isinstance(options, Mapping):
        raise LabError("options must be a dict of helm values, e.g. {'socketLB.enabled': 'false'}")
    out: dict[str, Any] = {}
    for key, val in options.items():
        if not isinstance(key, str) or not _KEY.match(key) or len(key) > 200:
            raise LabError(f"--set {_show(key)}: not a helm value path like socketLB.enabled")
        if not (val is None or isinstance(val, str | bool | int) or (isinstance(val, float) and math.isfinite(val))):
            raise LabError(f"--set {key}: the value must be a string, number or true/false, got {_show(val)}")
        if isinstance(val, str) and (len(val) > 1000 or "\0" in val):
            raise LabError(f"--set {key}: the value is longer than 1000 characters or holds a NUL byte")
        out[key] = val
    return out


def parse_set_value(text: str) -> Any:
    """A ``--set`` value as helm's strvals reads it: true/false, null, a whole number, a
    ``{a,b}`` list of those, else the string itself (never YAML)."""
    if text.startswith("{") and text.endswith("}"):
        inner = text[1:-1]
        return [parse_set_value(x) for x in re.split(r"(?<!\\),", inner)] if inner else []
    if text in ("true", "false"):
        return text == "true"
    if text == "null":
        return None
    if _INT.match(text):
        try:
            n = int(text)
        except ValueError:
            return text
        return n if -(2**63) <= n < 2**63 else text
    return text


def _set_dotted(values: dict, key: str, val: Any) -> None:
    if not _KEY.match(key):
        raise LabError(f"--set {key!r}: not a helm value path like socketLB.enabled")
    cur = values
    parts = key.split(".")
    for i, p in enumerate(parts[:-1]):
        nxt = cur.setdefault(p, {})
        if not isinstance(nxt, dict):
            raise LabError(f"--set {key}: {'.'.join(parts[: i + 1])} is a value, not a mapping of helm values")
        cur = nxt
    cur[parts[-1]] = val


def parse_set(items: Iterable[str]) -> dict[str, Any]:
    """``["socketLB.enabled=false"]`` -> ``{"socketLB.enabled": "false"}`` (CLI ``--set``)."""
    out: dict[str, Any] = {}
    for item in items:
        # as helm: commas separate KEY=VALUE pairs, except inside {a,b} lists or escaped
        for part in re.split(r"(?<!\\),(?![^{}]*\})", item):
            key, sep, val = part.partition("=")
            if not sep:
                raise LabError(f"--set {_show(item)}: expected KEY=VALUE, e.g. --set socketLB.enabled=false")
            out.update(check_options({key.strip(): val.strip()}))
    return out


# --------------------------------------------------------------------------- manifests


def manifest_files(paths: Iterable[str | Path]) -> list[Path]:
    if isinstance(paths, str | Path):
        paths = [paths]
    files: list[Path] = []
    given = []
    for p in paths:
        if not isinstance(p, str | Path) or not str(p) or "\0" in str(p):
            raise LabError(f"manifest path {_q(p)} is not a file or folder name")
        p = Path(p)
        given.append(p)
        if p.is_dir():
            files += sorted(f for f in p.iterdir() if f.suffix in (".yaml", ".yml") and f.is_file())
        elif p.is_file():
            files.append(p)
        elif p.exists():
            raise LabError(f"{show_path(p)}: not a regular file or folder")
        else:
            raise LabError(f"{show_path(p)}: no such file or directory")
    if not files:
        raise LabError("no manifest files (*.yaml) found in " + (", ".join(map(str, given)) or "nothing given"))
    return files


SUPPORTED_KINDS = {"Namespace": "v1", "Pod": "v1", "Deployment": "apps/v1", "Service": "v1"}


def load_manifests(paths: Iterable[str | Path]) -> Manifests:
    """Parse Namespace, Pod, Deployment and Service objects; anything else is an error.

    Each object is checked against Kubernetes' schema of its kind first, then against what
    labkit runs; the first problem is one line: file, object, field, what to do."""
    out = Manifests()
    seen: set[tuple[str, str, str]] = set()
    count = 0
    for f in manifest_files(paths):
        shown = show_path(f)
        for i, doc in enumerate(_load_yaml_docs(f)):
            count += 1
            if count > MAX_OBJECTS:
                raise LabError(f"{shown}: more than {MAX_OBJECTS} objects in one apply; apply fewer at a time")
            kind = doc.get("kind")
            meta = doc.get("metadata")
            name = meta.get("name") if isinstance(meta, dict) else None
            obj = f"{kind} {name!r}" if isinstance(kind, str) and isinstance(name, str) else f"document {i + 1}"
            obj = _show(obj) if len(obj) > 60 else obj
            if not isinstance(kind, str) or kind not in SUPPORTED_KINDS:
                raise LabError(
                    f"{shown}: {obj}: kind {_q(kind)} is not supported by labkit (Namespace, Pod, Deployment, Service)"
                )
            api = doc.get("apiVersion")
            if api != SUPPORTED_KINDS[kind]:
                raise LabError(
                    f"{shown}: {obj}: apiVersion: {_q(api)} is not the API version of a {kind} "
                    f"(write apiVersion: {SUPPORTED_KINDS[kind]})"
                )
            bad = kubeschema.problem(doc)
            if bad:
                raise LabError(f"{shown}: {obj}: {bad}")
            if not isinstance(meta, dict):
                raise LabError(f"{shown}: {obj}: metadata: required, with a name (and a namespace)")
            where = f"{shown}: {kind} {name!r}"
            if not isinstance(name, str) or not _DNS_SUBDOMAIN.match(name):
                raise LabError(f"{shown}: {kind} has a missing or invalid metadata.name {_q(name)}")
            ns = meta.get("namespace") or "default"
            if not _DNS_LABEL.match(ns):
                raise LabError(f"{where}: metadata.namespace: invalid namespace {_q(ns)}")
            _labels(where, "metadata.labels", meta.get("labels"))
            ident = (str(kind), ns, name)
            if ident in seen:
                raise LabError(f"{where}: defined twice in namespace {ns}")
            seen.add(ident)
            spec = doc.get("spec") or {}
            if kind == "Namespace":
                if not _DNS_LABEL.match(name):
                    raise LabError(f"{where}: metadata.name: invalid namespace name")
                out.namespaces.append(name)
            elif kind == "Pod":
                out.pods.append(_pod(where, "spec", ns, name, meta, spec))
            elif kind == "Deployment":
                out.pods.append(_deployment(where, ns, name, spec))
            elif kind == "Service":
                out.services.append(_service(where, ns, name, meta, spec))
    return out


# Kubernetes' label syntax (apimachinery validation.IsQualifiedName / IsValidLabelValue).
_LABEL_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9]$")


def _labels(where: str, field_name: str, d: Any) -> tuple[tuple[str, str], ...]:
    if d is None:
        return ()
    if not isinstance(d, dict):
        raise LabError(f"{where}: {field_name} must be a mapping of strings")
    if len(d) > 64:
        raise LabError(f"{where}: {field_name}: more than 64 labels")
    out = []
    for k, v in d.items():
        if not isinstance(k, str) or not isinstance(v, str):
            raise LabError(f"{where}: {field_name}.{_show(k)}: label keys and values must be strings, got {_q(v)}")
        prefix, _, lname = k.rpartition("/")
        if (prefix and not _DNS_SUBDOMAIN.match(prefix)) or not _LABEL_NAME.match(lname):
            raise LabError(f"{where}: {field_name}: {_q(k)} is not a valid label key (e.g. app or example.com/app)")
        if v and not _LABEL_NAME.match(v):
            raise LabError(
                f"{where}: {field_name}.{k}: {_q(v)} is not a valid label value (at most 63 of A-Z a-z 0-9 - _ .)"
            )
        out.append((k, v))
    return tuple(sorted(out))


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
        raise LabError(f"{where}: image {_q(image)} cannot run on the embedded backend (it runs {known})")
    return APPS[repo]


def _pod(
    where: str, at: str, ns: str, name: str, meta: dict, spec: dict, owner: str = "", replicas: int = 1
) -> PodSpec:
    if not _DNS_LABEL.match(name):
        raise LabError(f"{where}: pod name {name!r} must be a DNS label (a-z, 0-9, -)")
    containers = spec.get("containers")
    if not isinstance(containers, list) or not containers or not isinstance(containers[0], dict):
        raise LabError(f"{where}: {at}.containers must list at least one container")
    if len(containers) > 1:
        raise LabError(f"{where}: {at}.containers: only one container per pod is supported by the embedded backend")
    c = containers[0]
    image = c.get("image")
    if not isinstance(image, str) or not image:
        raise LabError(f"{where}: {at}.containers[0].image: the container has no image")
    app = image_app(f"{where}: {at}.containers[0]", image)
    port = 80
    args = [str(a) for a in (c.get("args") or [])]
    if app == "whoami" and "--port" in args:
        i = args.index("--port") + 1
        if i >= len(args) or not re.fullmatch(r"[0-9]{1,5}", args[i]) or not 0 < int(args[i]) < 65536:
            raise LabError(f"{where}: {at}.containers[0].args: whoami --port needs a port number 1-65535")
        port = int(args[i])
    node_name = spec.get("nodeName")
    if node_name is not None and not (isinstance(node_name, str) and _DNS_SUBDOMAIN.match(node_name)):
        raise LabError(f"{where}: {at}.nodeName: invalid node name {_q(node_name)}")
    tolerations = [t for t in spec.get("tolerations") or [] if isinstance(t, dict)]
    tol = any(
        t.get("operator") == "Exists"
        and t.get("key") in (None, "node-role.kubernetes.io/control-plane")
        or t.get("key") == "node-role.kubernetes.io/control-plane"
        for t in tolerations
    )
    terms = []
    anti = _get(spec, "affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution") or []
    for j, t in enumerate(anti):
        here = f"{at}.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution[{j}]"
        if not isinstance(t, dict) or t.get("topologyKey") != "kubernetes.io/hostname":
            raise LabError(f"{where}: {here}.topologyKey must be kubernetes.io/hostname")
        sel = t.get("labelSelector") or {}
        exprs = []
        for k, e in enumerate(sel.get("matchExpressions") or []):
            op = e.get("operator")
            if op not in ("In", "NotIn", "Exists", "DoesNotExist"):
                raise LabError(
                    f"{where}: {here}.labelSelector.matchExpressions[{k}].operator {_q(op)} is not supported"
                )
            exprs.append((str(e.get("key")), op, tuple(str(v) for v in e.get("values") or [])))
        terms.append(
            AntiAffinityTerm(_labels(where, f"{here}.labelSelector.matchLabels", sel.get("matchLabels")), tuple(exprs))
        )
    labels = _labels(where, "metadata.labels" if not owner else f"{at[:-5]}.metadata.labels", meta.get("labels"))
    return PodSpec(ns, name, labels, image, app, port, node_name, tol, tuple(terms), owner, replicas)


def _deployment(where: str, ns: str, name: str, spec: dict) -> PodSpec:
    replicas = spec.get("replicas", 1)
    if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
        raise LabError(f"{where}: spec.replicas must be a whole number >= 0")
    if replicas > MAX_REPLICAS:
        raise LabError(f"{where}: spec.replicas: {replicas} is more than labkit runs (at most {MAX_REPLICAS})")
    tmpl = spec.get("template") or {}
    tmeta = tmpl.get("metadata") or {}
    sel = _labels(where, "spec.selector.matchLabels", _get(spec, "selector.matchLabels"))
    labels = dict(_labels(where, "spec.template.metadata.labels", tmeta.get("labels")))
    if not sel or any(labels.get(k) != v for k, v in sel):
        raise LabError(f"{where}: spec.selector.matchLabels must match the template's labels")
    if len(name) > 47:
        raise LabError(f"{where}: metadata.name: a Deployment name longer than 47 is too long for pod names")
    return _pod(where, "spec.template.spec", ns, name, tmeta, tmpl.get("spec") or {}, owner=name, replicas=replicas)


def _service(where: str, ns: str, name: str, meta: dict, spec: dict) -> ServiceSpec:
    if not _DNS_LABEL.match(name):
        raise LabError(f"{where}: metadata.name: a service name must be a DNS label")
    stype = spec.get("type", "ClusterIP")
    if stype != "ClusterIP":
        raise LabError(f"{where}: spec.type: {_q(stype)} is not supported by the embedded backend (ClusterIP only)")
    ports = []
    for i, p in enumerate(spec.get("ports") or []):
        proto = str(p.get("protocol", "TCP"))
        if proto not in ("TCP", "UDP"):
            raise LabError(f"{where}: spec.ports[{i}].protocol: {_q(proto)} is not supported (TCP, UDP)")
        port = p.get("port")
        target = p.get("targetPort", port)
        if not all(isinstance(x, int) and not isinstance(x, bool) and 0 < x < 65536 for x in (port, target)):
            raise LabError(
                f"{where}: spec.ports[{i}]: port and targetPort must be numbers 1-65535 (named ports are not supported)"
            )
        ports.append(ServicePort(port, target, proto, str(p.get("name", ""))))
    if not ports:
        raise LabError(f"{where}: spec.ports must list at least one port")
    if len(ports) > 64:
        raise LabError(f"{where}: spec.ports: more than 64 ports")
    cip = spec.get("clusterIP")
    if cip is not None:
        try:
            cip = str(ipaddress.IPv4Address(cip))
        except ValueError:
            raise LabError(
                f"{where}: spec.clusterIP {_q(cip)} is not an IPv4 address (headless services are not supported)"
            ) from None
    return ServiceSpec(
        ns,
        name,
        stype,
        _labels(where, "spec.selector", spec.get("selector")),
        tuple(ports),
        cip,
        _labels(where, "metadata.labels", meta.get("labels")),
    )
