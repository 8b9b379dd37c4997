"""Socket LB off (`--set socketLB.enabled=false`): the tc load balancer of bpf_lxc (root):
the ClusterIP is on the pod's eth0, DNAT happens in tc, a SVC CT entry
holds the BackendID, the OUT entry carries RevNAT = the service id, replies come back
from the ClusterIP."""

from __future__ import annotations

import pytest

from labkit import tables

from .dp_helpers import PEERNAME, py
from .lab_fixtures import running_lab

pytestmark = pytest.mark.root


@pytest.fixture(scope="module")
def lab():
    with running_lab("dpt", options={"socketLB.enabled": "false"}) as lab:
        yield lab


def test_tc_lb_dnat_svc_entry_and_revnat(lab):
    svc = lab.services.set_index("name").loc["webpod"]
    pods = lab.pods.set_index("name")
    c = pods.loc["client-pod"]
    for node in ("kind-worker", "kind-worker2"):
        lab.maps(node).flush("ct")
    got = lab.run_captured(
        "client-pod",
        ["curl", "-s", "--max-time", "5", f"http://{svc.cluster_ip}"],
        ["client-pod:eth0", f"kind-worker:{c.lxc}"],
    )
    assert got.result.returncode == 0 and got.result.stdout.startswith("Hostname: webpod-")
    pk = got.packets
    eth0 = pk[(pk.point == "client-pod:eth0") & (pk.proto == "TCP")]
    assert svc.cluster_ip in set(eth0.dst_ip)  # the VIP is on the wire in the pod
    assert svc.cluster_ip in set(eth0.src_ip)  # replies rev-translated back to the VIP
    backends = set(pods[pods.app == "whoami"].ip)
    assert not (set(eth0.src_ip) | set(eth0.dst_ip)) & backends
    ct = lab.maps("kind-worker").ct()
    tables.CT.check(ct)
    svc_rows = ct[(ct.direction == "SVC") & (ct.dst_ip == svc.cluster_ip)]
    assert (
        len(svc_rows) == 1 and svc_rows.iloc[0].backend_id > 0 and svc_rows.iloc[0].rev_nat == svc_rows.iloc[0].rev_nat
    )
    out = ct[(ct.direction == "OUT") & (ct.src_ip == c.ip) & ct.dst_ip.isin(backends)]
    assert len(out) == 1
    lb = lab.maps("kind-worker").lb()
    sid = int(lb[(lb.frontend_ip == svc.cluster_ip) & (lb.slot == 0)].rev_nat.iloc[0])
    assert out.iloc[0].rev_nat == sid and svc_rows.iloc[0].rev_nat == sid
    slot = lb[(lb.frontend_ip == svc.cluster_ip) & (lb.backend_id == svc_rows.iloc[0].backend_id)]
    assert slot.iloc[0].backend_ip == out.iloc[0].dst_ip


def test_tc_lb_peername_is_the_clusterip_too(lab):
    svc = lab.services.set_index("name").loc["webpod"]
    assert lab.pod("client-pod").sh(py(PEERNAME, svc.cluster_ip, "80")).strip() == f"{svc.cluster_ip}:80"
    ev = lab.monitor("kind-worker", seconds=10)
    replies = ev[(ev.observation_point == "to-endpoint") & (ev.src_ip == svc.cluster_ip)]
    assert len(replies) and (replies.orig_ip != svc.cluster_ip).all()  # orig-ip: the backend


def test_a_closed_service_entry_closes_both_ways_and_expires_soon(lab):
    """__ct_lookup() ACTION_CLOSE on a CT_SERVICE entry: it sees one direction only, so a
    FIN sets both closing bits, and a fully closed entry gets CT_CLOSE_TIMEOUT (10 s)."""
    import time

    svc = lab.services.set_index("name").loc["webpod"]
    lab.maps("kind-worker").flush("ct")
    lab.pod("client-pod").sh(["curl", "-s", "--max-time", "5", "-o", "/dev/null", f"http://{svc.cluster_ip}"])
    time.sleep(0.3)
    ct = lab.maps("kind-worker").ct()
    entry = ct[(ct.direction == "SVC") & (ct.dst_ip == svc.cluster_ip)].iloc[0]
    assert {"RxClosing", "TxClosing"} <= set(entry.flag_names.split())
    assert 0 < entry.expires - time.monotonic() <= 10.5
