"""The numbers the datapath reports and the names labkit prints for them: one meaning.

Drop reasons, source-file ids, observation points, metric directions and CT states are
``#define``d in bpf/ (what the programs write into events and metrics) and named in
labkit/cilium/reasons.py (what `labkit monitor`, `bpf metrics list` and flows print).
These tests hold the two to each other and both to Cilium 1.17, whose numbers and texts
a learner compares them with: the CILIUM_* tables below are Cilium's (bpf/lib/common.h
DROP_* and pkg/monitor/api/drop.go; bpf/source_names_to_ids.h; enum trace_point of
bpf/lib/trace.h and pkg/monitor/api/types.go). A new code in bpf/ must be Cilium's: add
its Cilium entry here, then its name in reasons.py.
"""

from __future__ import annotations

import re

from labkit.cilium import reasons
from labkit.embedded.ebpf import build, source

# C name -> (code, what Cilium's monitor prints), for every drop labkit's datapath can report
CILIUM_DROPS = {
    "DROP_INVALID_SIP": (132, "Invalid source ip"),
    "DROP_INVALID": (134, "Invalid packet"),
    "DROP_CT_INVALID_HDR": (135, "CT: Truncated or invalid header"),
    "DROP_CT_UNKNOWN_PROTO": (137, "CT: Unknown L4 protocol"),
    "DROP_UNKNOWN_L3": (139, "Unsupported L3 protocol"),
    "DROP_WRITE_ERROR": (141, "Error writing to packet"),
    "DROP_UNKNOWN_L4": (142, "Unknown L4 protocol"),
    "DROP_CSUM_L3": (153, "Error while correcting L3 checksum"),
    "DROP_CSUM_L4": (154, "Error while correcting L4 checksum"),
    "DROP_CT_CREATE_FAILED": (155, "CT: Map insertion failed"),
    "DROP_NO_SERVICE": (158, "Service backend not found"),
    "DROP_NAT_NO_MAPPING": (167, "No mapping for NAT masquerade"),
    "DROP_NAT_UNSUPP_PROTO": (168, "Unsupported protocol for NAT masquerade"),
    "DROP_NO_FIB": (169, "FIB lookup failed"),
    "DROP_IS_CLUSTER_IP": (174, "Is a ClusterIP"),
    "DROP_TTL_EXCEEDED": (196, "TTL exceeded"),
}
CILIUM_FILES = {"bpf_host.c": 1, "bpf_lxc.c": 2, "bpf_overlay.c": 3, "bpf_xdp.c": 4, "bpf_sock.c": 5}
CILIUM_TRACE_POINTS = {
    "TRACE_TO_LXC": (0, "to-endpoint"),
    "TRACE_TO_PROXY": (1, "to-proxy"),
    "TRACE_TO_HOST": (2, "to-host"),
    "TRACE_TO_STACK": (3, "to-stack"),
    "TRACE_TO_OVERLAY": (4, "to-overlay"),
    "TRACE_FROM_LXC": (5, "from-endpoint"),
    "TRACE_FROM_PROXY": (6, "from-proxy"),
    "TRACE_FROM_HOST": (7, "from-host"),
    "TRACE_FROM_STACK": (8, "from-stack"),
    "TRACE_FROM_OVERLAY": (9, "from-overlay"),
    "TRACE_FROM_NETWORK": (10, "from-network"),
    "TRACE_TO_NETWORK": (11, "to-network"),
}
CILIUM_METRIC_DIRS = {
    "METRIC_INGRESS": (1, "INGRESS"),
    "METRIC_EGRESS": (2, "EGRESS"),
    "METRIC_SERVICE": (3, "SERVICE"),
}
CILIUM_CT_STATES = {
    "CT_NEW": (0, "new"),
    "CT_ESTABLISHED": (1, "established"),
    "CT_REPLY": (2, "reply"),
    "CT_RELATED": (3, "related"),
}


def defines(header: str, prefix: str) -> dict[str, int]:
    """``#define PREFIX... <number>`` of a bpf/ file, as name -> value."""
    text = (source.BPF_DIR / header).read_text()
    return {m[1]: int(m[2], 0) for m in re.finditer(rf"^#define\s+({prefix}\w*)\s+(-?(?:0x)?\d+)\b", text, re.M)}


def test_every_drop_code_of_the_datapath_is_ciliums():
    c = defines("lib/common.h", "DROP_")
    assert c, "no DROP_* found in bpf/lib/common.h"
    unknown = sorted(set(c) - set(CILIUM_DROPS))
    assert not unknown, f"{unknown}: not Cilium's names; look them up in Cilium's bpf/lib/common.h"
    # labkit's C uses the positive value of Cilium's negative codes (-ret is what it reports)
    assert c == {name: CILIUM_DROPS[name][0] for name in c}


def test_every_drop_code_prints_ciliums_text_and_nothing_else_has_a_name():
    c = defines("lib/common.h", "DROP_")
    # 0 and 3, 4 are the forward reasons of the metrics (REASON_FORWARDED, REASON_PLAINTEXT, REASON_DECRYPT)
    named = {code: text for code, text in reasons.DROP_REASONS.items() if code not in (0, 3, 4)}
    assert named == {code: CILIUM_DROPS[name][1] for name, code in c.items()}
    assert reasons.DROP_REASONS[0] == "Success" and defines("lib/common.h", "REASON_FORWARDED") == {
        "REASON_FORWARDED": 0
    }
    assert (reasons.DROP_REASONS[3], reasons.DROP_REASONS[4]) == ("Interface", "Interface Decrypted")
    assert reasons.drop_reason(250) == "Unknown drop reason (250)"


def test_source_file_ids_are_ciliums_and_each_program_reports_its_own():
    c = defines("lib/common.h", "FILE_")
    files = {name.removeprefix("FILE_").lower() + ".c": code for name, code in c.items()}
    assert files == {f: CILIUM_FILES[f] for f in files}
    assert {code: f for f, code in files.items()} == reasons.FILES
    for program in build.PROGRAMS:  # each attach point's file says which file it is
        text = (source.BPF_DIR / program).read_text()
        magic = re.search(r"^#define __MAGIC_FILE__ (FILE_\w+)$", text, re.M)
        assert magic and files[magic[1].removeprefix("FILE_").lower() + ".c"] == CILIUM_FILES[program], program


def test_observation_points_are_ciliums_enum_trace_point():
    c = defines("lib/trace.h", "TRACE_")
    points = {n: v for n, v in c.items() if n != "TRACE_PAYLOAD_LEN"}
    unknown = sorted(set(points) - set(CILIUM_TRACE_POINTS))
    assert points and not unknown, f"{unknown}: not in Cilium's enum trace_point"
    assert points == {n: CILIUM_TRACE_POINTS[n][0] for n in points}
    assert {v: name for v, (name, _) in reasons.OBS_POINTS.items()} == {v: t for v, t in CILIUM_TRACE_POINTS.values()}


def test_metric_directions_and_ct_states_are_ciliums():
    dirs = defines("lib/common.h", "METRIC_")
    assert dirs == {n: CILIUM_METRIC_DIRS[n][0] for n in dirs}
    assert dict(CILIUM_METRIC_DIRS.values()) == reasons.DIRECTIONS
    states = {n: v for n, v in defines("lib/common.h", "CT_").items() if n in CILIUM_CT_STATES}
    assert states == {n: v for n, (v, _) in CILIUM_CT_STATES.items()}
    assert {v: reasons.TRACE_STATES[v] for v, _ in CILIUM_CT_STATES.values()} == dict(CILIUM_CT_STATES.values())
