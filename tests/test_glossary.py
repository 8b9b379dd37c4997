"""The Korean glossary (labs/ko/glossary.md, 용어집): every term the Korean edition keeps in
English is explained there in Korean, alphabetically, with where in the labs it first appears;
every built Korean notebook links it."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parent.parent
LABS = ROOT / "labs"
KO = LABS / "ko"
GLOSSARY = KO / "glossary.md"

# The terms the Korean lessons write in English: the translators' keep-in-English list, then the
# others the five lessons use. Each must be a name of a glossary entry (one entry may carry
# several names: "masquerade / SNAT", "conntrack (CT)").
KEEP_IN_ENGLISH = """
endpoint, ClusterIP, Service, Pod, node, conntrack, CT, native routing, overlay, veth, lxc,
socket LB, socket-level load balancing, tc, eBPF, BPF map, datapath, masquerade, SNAT, NAT,
identity, ipcache, Hubble, flow, kube-proxy, kubeProxyReplacement, helm values, CIDR, pod CIDR,
router IP, cilium_host, netns, network namespace, ARP, neighbour, TCP SYN, SYN-ACK, ACK, FIN,
reply, state new, established, DNS, CoreDNS, kube-dns, API server, tcpdump, pwru, trace, capture,
lab, notebook, cell
"""
ALSO_USED = """
autoDirectNodeRoutes, endpointRoutes, ipv4NativeRoutingCIDR, bpf.masquerade, endpoint map,
ifindex, nodemac, eth0, next hop, companion lab, ipam, kind, bpf_redirect_peer,
bpf_redirect_neigh, bpf_fib_lookup, BPF host routing, CNI, from-container, from-netdev,
to-netdev, ingress, egress, cilium monitor, RevNAT, trace-sock, tracepoint, skb, ladder,
observation point, service map, backend, cgroup, connect(), getpeername(), DNAT, per-packet LB,
kubelet, drop, metrics, external host, spoofed source
"""
TERMS = [t.strip() for t in re.split(r",", KEEP_IN_ENGLISH + "," + ALSO_USED)]


def _rows() -> list[list[str]]:
    """The glossary table's rows (term, meaning, first appearance), header and rule left out."""
    rows = [line for line in GLOSSARY.read_text().splitlines() if line.startswith("|")]
    assert len(rows) > 2 and rows[0].startswith("| 용어 |"), "the glossary is a table: | 용어 | 뜻 | 처음 나오는 곳 |"
    return [[cell.strip() for cell in line.strip("|").split(" | ")] for line in rows[2:]]


def _plain(term: str) -> str:
    return term.replace("**", "").replace("`", "")


def _names(term: str) -> set[str]:
    """The names an entry answers to: 'conntrack (CT)' -> conntrack, CT; 'a / b' -> a, b."""
    name, _, aside = _plain(term).partition(" (")
    parts = name.split(" / ") + (aside.removesuffix(")").split(" / ") if aside else [])
    return {p.strip().lower() for p in parts}


def _sort_key(term: str) -> str:
    return " ".join(re.sub(r"[^a-z0-9]", " ", _plain(term).lower()).split())


def test_every_term_has_its_entry():
    names = set().union(*(_names(row[0]) for row in _rows()))
    missing = [t for t in TERMS if t.lower() not in names]
    assert missing == [], f"labs/ko/glossary.md has no entry for {missing}"


def test_entries_are_alphabetical_explained_in_korean_and_placed():
    rows = _rows()
    terms = [row[0] for row in rows]
    assert [_sort_key(t) for t in terms] == sorted(_sort_key(t) for t in terms), "entries not in alphabetical order"
    for row in rows:
        assert len(row) == 3, f"{row[0]}: a row has three cells (term, meaning, first appearance)"
        term, meaning, where = row
        assert len(re.findall(r"[가-힣]", meaning)) >= 15, f"{term}: explain it in Korean, a sentence or two"
        targets = re.findall(r"\]\(([^)]+)\)", where)
        assert targets, f"{term}: say where it first appears, with a link to the notebook"
        for target in targets:
            assert (LABS / target).is_file(), f"{term}: {target} is not a lesson"


NOTEBOOKS = [p.name for p in sorted(LABS.glob("[0-9][0-9]-*.ipynb"))]


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(n, marks=pytest.mark.skipif(not (KO / n).exists(), reason=f"labs/ko/{n} is not built yet"))
        for n in NOTEBOOKS
    ],
)
def test_each_korean_notebook_links_the_glossary(name: str):
    nb = nbformat.read(KO / name, as_version=4)
    prose = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    assert "[용어집](glossary.md)" in prose, f"labs/ko/{name}: link the glossary as [용어집](glossary.md)"
