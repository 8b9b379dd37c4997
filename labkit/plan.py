"""Where everything goes: node IPs and CIDRs, pod placement and IPs, ClusterIPs, ids.

Pure and deterministic: the same spec and manifests give the same plan, so notebooks show
the same addresses every run, and two labs side by side get the same IPs. Allocation looks
"random" the way Cilium's and Kubernetes' do (hash-seeded, probing on collision) rather than
sequential, so students do not read meaning into .2, .3, .4.

``extend`` adds manifests to an existing plan (``apply`` on a running lab) without moving
anything that is already placed; applying the same objects again changes nothing.
"""

from __future__ import annotations

import hashlib
import ipaddress
from dataclasses import asdict, dataclass, field

from .errors import LabError
from .spec import ClusterSpec, Manifests, PodSpec, ServiceSpec

KIND_NETWORK = ipaddress.IPv4Network("172.18.0.0/16")  # docker network "kind"
KIND_GATEWAY = "172.18.0.1"
# The lab's "external host" on the kind network, outside every pod and node address: the
# destination that BPF masquerade rewrites traffic for (embedded/exthost.py builds it).
EXTERNAL_IP = "172.18.0.100"
EXTERNAL_PORT = 80
# Identities below 256 are reserved in Cilium (host=1, world=2, ...: labkit/cilium).
MIN_IDENTITY, MAX_IDENTITY = 256, 65535
MAX_ENDPOINT_ID = 4095
_K8S_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # k8s rand.SafeEncodeString


def _h(*parts: str) -> int:
    return int.from_bytes(hashlib.sha256("/".join(parts).encode()).digest()[:8], "big")


def _k8s_suffix(n: int, *parts: str) -> str:
    v = _h(*parts)
    out = []
    for _ in range(n):
        v, r = divmod(v, len(_K8S_ALPHABET))
        out.append(_K8S_ALPHABET[r])
    return "".join(out)


def lxc_name(namespace: str, pod: str) -> str:
    """lxc + 12 hex of a hash of the pod's identity, as Cilium names host-side veths."""
    return "lxc" + hashlib.sha256(f"{namespace}/{pod}".encode()).hexdigest()[:12]


def node_mac(node_ip: str) -> str:
    """Docker's MAC for a container IP: 02:42 followed by the four address bytes."""
    return "02:42:" + ":".join(f"{b:02x}" for b in ipaddress.IPv4Address(node_ip).packed)


@dataclass
class NodePlan:
    name: str
    role: str
    ip: str
    mac: str
    pod_cidr: str
    router_ip: str


@dataclass
class PodPlan:
    namespace: str
    name: str
    node: str
    ip: str
    image: str
    app: str
    port: int
    lxc: str
    labels: dict[str, str]
    owner: str
    endpoint_id: int
    identity: int
    spec_key: str  # fingerprint of the spec it came from: re-apply with a change is an error

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass
class ServicePlan:
    namespace: str
    name: str
    type: str
    cluster_ip: str
    ports: list[dict]  # {port, target_port, protocol, name}
    selector: dict[str, str]
    id: int  # service / rev-NAT id
    spec_key: str

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass
class Plan:
    cluster: str
    pod_subnet: str
    service_subnet: str
    nodes: list[NodePlan]
    namespaces: list[str] = field(default_factory=lambda: ["default"])
    pods: list[PodPlan] = field(default_factory=list)
    services: list[ServicePlan] = field(default_factory=list)

    # ---- lookups
    def node(self, name: str) -> NodePlan:
        for n in self.nodes:
            if n.name == name:
                return n
        raise LabError(f"unknown node {name!r}; nodes are {', '.join(n.name for n in self.nodes)}")

    def pods_on(self, node: str) -> list[PodPlan]:
        return [p for p in self.pods if p.node == node]

    def backends(self, svc: ServicePlan) -> list[PodPlan]:
        return [
            p
            for p in self.pods
            if p.namespace == svc.namespace
            and svc.selector
            and all(p.labels.get(k) == v for k, v in svc.selector.items())
        ]

    # ---- (de)serialisation for the state file
    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> Plan:
        return cls(
            d["cluster"],
            d["pod_subnet"],
            d["service_subnet"],
            [NodePlan(**n) for n in d["nodes"]],
            list(d["namespaces"]),
            [PodPlan(**p) for p in d["pods"]],
            [ServicePlan(**s) for s in d["services"]],
        )


def _pick(network: ipaddress.IPv4Network, seed: int, used: set[str], what: str) -> str:
    """A free host address of ``network``, hash-seeded, probing forward on collision."""
    size = network.num_addresses
    base = int(network.network_address)
    for i in range(size):
        off = (seed + i) % size
        if off == 0 or off == size - 1:  # network and broadcast addresses
            continue
        ip = str(ipaddress.IPv4Address(base + off))
        if ip not in used:
            used.add(ip)
            return ip
    raise LabError(f"{what}: no free address left in {network}; remove pods or use a larger podSubnet")


def initial(cluster: ClusterSpec) -> Plan:
    """Nodes only: node IPs in kind's order (.2, .3, ...), pod CIDRs in node order."""
    subnets = ipaddress.IPv4Network(cluster.pod_subnet).subnets(new_prefix=cluster.node_cidr_mask)
    nodes = []
    for i, (ns, cidr) in enumerate(zip(cluster.nodes, subnets)):
        ip = str(KIND_NETWORK.network_address + 2 + i)
        router = _pick(cidr, _h("cilium_host", ns.name), set(), f"node {ns.name}")
        nodes.append(NodePlan(ns.name, ns.role, ip, node_mac(ip), str(cidr), router))
    return Plan(cluster.name, cluster.pod_subnet, cluster.service_subnet, nodes)


def _identity(namespace: str, labels: dict[str, str], used: dict[tuple, int]) -> int:
    """One security identity per label set (namespace included), as Cilium allocates them."""
    key = (namespace, tuple(sorted(labels.items())))
    if key in used:
        return used[key]
    taken = set(used.values())
    span = MAX_IDENTITY - MIN_IDENTITY
    seed = _h("identity", namespace, *[f"{k}={v}" for k, v in key[1]])
    for i in range(span):
        ident = MIN_IDENTITY + (seed + i) % span
        if ident not in taken:
            used[key] = ident
            return ident
    raise LabError("no free security identity")


def extend(plan: Plan, m: Manifests) -> tuple[Plan, list[str]]:
    """A new plan with ``m`` added, and one line per object saying what changed."""
    new = Plan.from_dict(plan.to_dict())
    notes: list[str] = []
    for ns in m.namespaces:
        if ns not in new.namespaces:
            new.namespaces.append(ns)
            notes.append(f"namespace/{ns} created")
        else:
            notes.append(f"namespace/{ns} unchanged")
    known_ns = set(new.namespaces)
    objs: list[PodSpec | ServiceSpec] = [*m.pods, *m.services]
    for obj in objs:
        if obj.namespace not in known_ns:
            raise LabError(
                f"{type(obj).__name__[:-4].lower()} {obj.name!r}: namespace {obj.namespace!r} does not exist; "
                f"add a Namespace manifest for it"
            )
    used_ips = {n.router_ip for n in new.nodes} | {p.ip for p in new.pods}
    idents = {(p.namespace, tuple(sorted(p.labels.items()))): p.identity for p in new.pods}
    for spec in m.pods:
        notes += _place(new, spec, used_ips, idents)
    for svc in m.services:
        notes.append(_add_service(new, svc))
    return new, notes


def _spec_key(obj: PodSpec | ServiceSpec) -> str:
    return hashlib.sha256(repr(obj).encode()).hexdigest()[:16]


def _place(plan: Plan, spec: PodSpec, used_ips: set[str], idents: dict) -> list[str]:
    kind = "deployment" if spec.owner else "pod"
    key = _spec_key(spec)
    existing = [
        p
        for p in plan.pods
        if p.namespace == spec.namespace and (p.owner or p.name) == spec.name and bool(p.owner) == bool(spec.owner)
    ]
    if existing:
        if existing[0].spec_key != key:
            raise LabError(
                f"{kind} {spec.namespace}/{spec.name} already exists with a different spec; "
                f"labkit down and up again to change it"
            )
        return [f"{kind}.apps/{spec.name} unchanged" if spec.owner else f"pod/{spec.name} unchanged"]
    if spec.owner:
        template = _k8s_suffix(10, "rs", spec.namespace, spec.name, key)
        names = [
            f"{spec.name}-{template}-{_k8s_suffix(5, 'pod', spec.namespace, spec.name, str(i))}"
            for i in range(spec.replicas)
        ]
    else:
        names = [spec.name]
    for name in names:
        if any(p.namespace == spec.namespace and p.name == name for p in plan.pods):
            raise LabError(f"pod {spec.namespace}/{name} already exists; names must be unique per namespace")
        node = _schedule(plan, spec, name)
        n = plan.node(node)
        ip = _pick(
            ipaddress.IPv4Network(n.pod_cidr),
            _h("pod", spec.namespace, name),
            used_ips,
            f"pod {spec.namespace}/{name} on {node}",
        )
        taken_ep = {p.endpoint_id for p in plan.pods_on(node)}
        ep = next(
            1 + (_h("ep", node, spec.namespace, name) + i) % MAX_ENDPOINT_ID
            for i in range(MAX_ENDPOINT_ID)
            if 1 + (_h("ep", node, spec.namespace, name) + i) % MAX_ENDPOINT_ID not in taken_ep
        )
        labels = dict(spec.labels)
        plan.pods.append(
            PodPlan(
                spec.namespace,
                name,
                node,
                ip,
                spec.image,
                spec.app,
                spec.port,
                lxc_name(spec.namespace, name),
                labels,
                spec.owner,
                ep,
                _identity(spec.namespace, labels, idents),
                key,
            )
        )
    return [f"deployment.apps/{spec.name} created" if spec.owner else f"pod/{spec.name} created"]


def _schedule(plan: Plan, spec: PodSpec, name: str) -> str:
    """Kubernetes' scheduling, reduced to what the lab needs.

    nodeName wins; otherwise nodes tainted NoSchedule (the control plane) are skipped unless
    tolerated, required pod anti-affinity (hostname topology) filters nodes, and replicas of
    one Deployment spread over the remaining nodes (fewest of its pods, then fewest pods).
    """
    if spec.node_name:
        plan.node(spec.node_name)  # raises a clear error for an unknown node
        return spec.node_name
    candidates = []
    for n in plan.nodes:
        if n.role == "control-plane" and not spec.tolerates_control_plane:
            continue
        on_node = plan.pods_on(n.name)
        if any(t.matches(p.labels) for t in spec.anti_affinity for p in on_node if p.namespace == spec.namespace):
            continue
        same = sum(1 for p in on_node if p.owner == spec.owner and p.namespace == spec.namespace and spec.owner)
        candidates.append((same, len(on_node), plan.nodes.index(n), n.name))
    if not candidates:
        raise LabError(
            f"pod {spec.namespace}/{name} cannot be scheduled: no node is free of taints and anti-affinity conflicts"
        )
    return min(candidates)[3]


def _add_service(plan: Plan, svc: ServiceSpec) -> str:
    key = _spec_key(svc)
    for s in plan.services:
        if s.namespace == svc.namespace and s.name == svc.name:
            if s.spec_key != key:
                raise LabError(
                    f"service {svc.namespace}/{svc.name} already exists with a different spec; "
                    f"labkit down and up again to change it"
                )
            return f"service/{svc.name} unchanged"
    net = ipaddress.IPv4Network(plan.service_subnet)
    used = {s.cluster_ip for s in plan.services}
    used |= {str(net.network_address + 1), str(net.network_address + 10)}  # kubernetes, kube-dns
    if svc.cluster_ip:
        if ipaddress.IPv4Address(svc.cluster_ip) not in net:
            raise LabError(f"service {svc.name}: clusterIP {svc.cluster_ip} is outside the service subnet {net}")
        if svc.cluster_ip in used:
            raise LabError(f"service {svc.name}: clusterIP {svc.cluster_ip} is already allocated")
        ip = svc.cluster_ip
    else:
        ip = _pick(net, _h("svc", svc.namespace, svc.name), used, f"service {svc.name}")
    sid = max((s.id for s in plan.services), default=1) + 1  # id 1: the kubernetes service
    plan.services.append(
        ServicePlan(
            svc.namespace,
            svc.name,
            svc.type,
            ip,
            [{"port": p.port, "target_port": p.target_port, "protocol": p.protocol, "name": p.name} for p in svc.ports],
            dict(svc.selector),
            sid,
            key,
        )
    )
    return f"service/{svc.name} created"
