"""Where everything goes: node IPs and CIDRs, pod placement and IPs, ClusterIPs, ids.

Pure and deterministic: the same spec and manifests give the same plan, so notebooks show
the same addresses every run, and two labs side by side get the same IPs. Allocation looks
"random" the way Cilium's and Kubernetes' do (hash-seeded, probing on collision) rather than
sequential, so students do not read meaning into .2, .3, .4.

``extend`` adds manifests to an existing plan (``apply`` on a running lab) without moving
anything that is already placed; applying the same objects again changes nothing.

``initial`` also lays out the control plane that kind and a Cilium install with the
blog's values bring (``controlplane.py``): the ``kubernetes`` service on the first
service address (443 -> the control-plane node's 6443), ``kube-dns`` on the tenth with two
CoreDNS pods, the Hubble services and pods the values enable; so ``service list``,
``bpf lb list`` and DNS look like a real cluster's before any manifest is applied.
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
    host_endpoint_id: int = 0  # Cilium's host endpoint (reserved:host) on this node


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
    id: int  # service / rev-NAT id of the first port; port i has id + i (one per frontend)
    spec_key: str
    # Backends of a service without selector (the API server): [{"ip", "node"}]
    endpoints: list[dict] = field(default_factory=list)
    # internalTrafficPolicy=Local: each node's frontend has only that node's backends
    internal_local: bool = False
    labels: dict[str, str] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    def port_ids(self) -> list[int]:
        """The service id (rev-NAT id) of each port: Cilium gives every frontend its own."""
        return [self.id + i for i in range(len(self.ports))]


@dataclass(frozen=True)
class Backend:
    """One backend address of a service: a pod, or a node (host network)."""

    ip: str
    node: str
    pod: str = ""  # namespace/name when the backend is a pod


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
        """The pods a service's selector selects."""
        return [
            p
            for p in self.pods
            if p.namespace == svc.namespace
            and svc.selector
            and all(p.labels.get(k) == v for k, v in svc.selector.items())
        ]

    def endpoints(self, svc: ServicePlan, node: str | None = None) -> list[Backend]:
        """Every backend address of ``svc`` (its EndpointSlice); for an
        internalTrafficPolicy=Local service seen from ``node``, only that node's."""
        out = [Backend(e["ip"], e["node"]) for e in svc.endpoints]
        out += [Backend(p.ip, p.node, p.key) for p in self.backends(svc)]
        if svc.internal_local and node is not None:
            out = [b for b in out if b.node == node]
        return out

    def service(self, namespace: str, name: str) -> ServicePlan | None:
        return next((s for s in self.services if s.namespace == namespace and s.name == name), None)

    def control_plane(self) -> NodePlan:
        return next((n for n in self.nodes if n.role == "control-plane"), self.nodes[0])

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
        taken_ep = {p.endpoint_id for p in plan.pods_on(node)} | {n.host_endpoint_id}
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


def next_service_id(plan: Plan) -> int:
    """Cilium numbers frontends in the order it learns them: one id per service port."""
    return max((max(s.port_ids(), default=s.id) for s in plan.services), default=0) + 1


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
    sid = next_service_id(plan)
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
            labels=dict(svc.labels),
        )
    )
    return f"service/{svc.name} created"


# ---------------------------------------------------------------------------- control plane
# What kind and `helm install cilium` with the blog's values put in every cluster before the
# first manifest: objects and names as they are there (kind v0.2x with Kubernetes 1.32,
# Cilium 1.17). Their addresses come from the cluster's own subnets, so another cluster
# directory gets its own.
COREDNS_IMAGE = "registry.k8s.io/coredns/coredns:v1.11.3"
HUBBLE_RELAY_IMAGE = "quay.io/cilium/hubble-relay:v1.17.6"
HUBBLE_UI_IMAGE = "quay.io/cilium/hubble-ui:v0.13.2"
API_SERVER_PORT = 6443  # kube-apiserver --secure-port on the control-plane node
HUBBLE_PEER_PORT = 4244  # each agent's Hubble server (hostNetwork)
DNS_DOMAIN = "cluster.local"


def with_control_plane(plan: Plan, *, hubble: bool = True, relay: bool = True, ui: bool = True) -> Plan:
    """``plan`` (nodes only) plus the control plane's namespaces, services and pods.

    Services in the order Cilium learns them (so their ids are 1, 2, ...): ``kubernetes``
    (first service address, 443 -> the control plane's API server on 6443), ``kube-dns``
    (tenth address; 53/UDP, 53/TCP, 9153/TCP -> two CoreDNS pods on the control plane),
    then with Hubble on: ``hubble-peer`` (443 -> every agent's 4244, internalTrafficPolicy
    Local), ``hubble-relay`` (80 -> 4245) and ``hubble-ui`` (80 -> 8081) with their pods.
    """
    new = Plan.from_dict(plan.to_dict())
    for n in new.nodes:
        n.host_endpoint_id = 1 + _h("host-endpoint", n.name) % MAX_ENDPOINT_ID
    for ns in ("default", "kube-system"):
        if ns not in new.namespaces:
            new.namespaces.append(ns)
    net = ipaddress.IPv4Network(new.service_subnet)
    cp = new.control_plane()
    workers = [n for n in new.nodes if n.role != "control-plane"] or [cp]

    def service(namespace: str, name: str, ip: str, ports: list[tuple[int, int, str, str]], **kw) -> None:
        rows = [{"port": p, "target_port": t, "protocol": proto, "name": pname} for p, t, proto, pname in ports]
        key = hashlib.sha256(repr((namespace, name, ip, rows, sorted(kw.items()))).encode()).hexdigest()[:16]
        new.services.append(
            ServicePlan(
                namespace, name, "ClusterIP", ip, rows, dict(kw.pop("selector", {})), next_service_id(new), key, **kw
            )
        )

    service(
        "default",
        "kubernetes",
        str(net.network_address + 1),
        [(443, API_SERVER_PORT, "TCP", "https")],
        endpoints=[{"ip": cp.ip, "node": cp.name}],
        labels={"component": "apiserver", "provider": "kubernetes"},
    )
    dns_labels = {"k8s-app": "kube-dns", "kubernetes.io/cluster-service": "true", "kubernetes.io/name": "CoreDNS"}
    service(
        "kube-system",
        "kube-dns",
        str(net.network_address + 10),
        [(53, 53, "UDP", "dns"), (53, 53, "TCP", "dns-tcp"), (9153, 9153, "TCP", "metrics")],
        selector={"k8s-app": "kube-dns"},
        labels=dns_labels,
    )
    pods = [
        PodSpec(
            "kube-system",
            "coredns",
            (("k8s-app", "kube-dns"),),
            COREDNS_IMAGE,
            "coredns",
            53,
            cp.name,
            True,
            owner="coredns",
            replicas=2,
        )
    ]
    used = {s.cluster_ip for s in new.services}
    if hubble:
        service(
            "kube-system",
            "hubble-peer",
            _pick(net, _h("svc", "kube-system", "hubble-peer"), set(used), "service hubble-peer"),
            [(443, HUBBLE_PEER_PORT, "TCP", "peer-service")],
            endpoints=[{"ip": n.ip, "node": n.name} for n in new.nodes],
            internal_local=True,
            labels={
                "app.kubernetes.io/name": "hubble-peer",
                "app.kubernetes.io/part-of": "cilium",
                "k8s-app": "cilium",
            },
        )
    for name, on, port, image in (
        ("hubble-relay", relay, 4245, HUBBLE_RELAY_IMAGE),
        ("hubble-ui", ui, 8081, HUBBLE_UI_IMAGE),
    ):
        if not (hubble and on):
            continue
        labels = {"app.kubernetes.io/name": name, "app.kubernetes.io/part-of": "cilium", "k8s-app": name}
        used = {s.cluster_ip for s in new.services}
        service(
            "kube-system",
            name,
            _pick(net, _h("svc", "kube-system", name), set(used), f"service {name}"),
            [(80, port, "TCP", "grpc" if name == "hubble-relay" else "http")],
            selector={"k8s-app": name},
            labels=labels,
        )
        if name == "hubble-ui":
            new.services[-1].type = "NodePort"  # hubble.ui.service.type; the NodePort frontends are not modelled
        pods.append(
            PodSpec("kube-system", name, tuple(sorted(labels.items())), image, name, port, workers[-1].name, owner=name)
        )
    new, _ = extend(new, Manifests(pods=pods))
    return new
