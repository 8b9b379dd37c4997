"""The backend contract (labkit/backend.py), checked against both backends.

Every method of ``Backend`` and ``MapsReader`` must exist on both implementations with
exactly the protocol's signature (names, kinds, defaults, annotations), return what its
annotation says, and every table must have its schema. The embedded backend is checked on
a real lab (root); the kind backend on recorded Cilium outputs and fake docker/kubectl.
"""

from __future__ import annotations

import inspect
import subprocess
import sys
import typing
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from labkit import backend as contract
from labkit import tables
from labkit.backend import Backend, Capabilities, CapturePoint, MapsReader, NodeRef, PodRef, Settings
from labkit.classroom.client import BrokerBackend, BrokerMaps
from labkit.doctor import Check
from labkit.embedded.backend import EmbeddedBackend
from labkit.embedded.ebpf.maps import NodeMapReader
from labkit.errors import LabError
from labkit.live.backend import KindBackend, LiveMaps

sys.path.insert(0, str(Path(__file__).parent / "fixtures" / "live"))
from fakes import Fakes

from .lab_fixtures import running_lab

IMPLEMENTATIONS = [
    (Backend, EmbeddedBackend),
    (Backend, KindBackend),
    (MapsReader, NodeMapReader),
    (MapsReader, LiveMaps),
    (Backend, BrokerBackend),  # a classroom student's backend, through the lab broker
    (MapsReader, BrokerMaps),
]


def protocol_methods(proto: type) -> list[str]:
    return [n for n, v in vars(proto).items() if callable(v) and not n.startswith("_")]


def _sig(fn: typing.Any) -> list[tuple[str, object, object, str]]:
    return [(p.name, p.kind, p.default, str(p.annotation)) for p in inspect.signature(fn).parameters.values()]


# ------------------------------------------------------------------ signatures (no root)
@pytest.mark.parametrize("proto, impl", IMPLEMENTATIONS, ids=lambda x: x.__name__)
def test_every_method_has_exactly_the_protocols_signature(proto, impl):
    for name in protocol_methods(proto):
        assert hasattr(impl, name), f"{impl.__name__} lacks {name}()"
        want, got = _sig(getattr(proto, name)), _sig(getattr(impl, name))
        assert got == want, (
            f"{impl.__name__}.{name}{inspect.signature(getattr(impl, name))} != protocol "
            f"{inspect.signature(getattr(proto, name))}"
        )
        want_ret, got_ret = _hint(proto, name), _hint(impl, name)
        # a protocol may be returned as one of its checked implementations (maps() -> NodeMapReader)
        assert got_ret == want_ret or (want_ret, got_ret) in IMPLEMENTATIONS, (impl.__name__, name, got_ret)


def test_the_protocols_cover_what_callers_use():
    assert {
        "up",
        "down",
        "apply",
        "settings",
        "maps",
        "monitor",
        "flows",
        "monitor_lines",
        "observe_lines",
        "capture_points",
        "resolve",
        "shell_env",
        "external_address",
        "existing_labs",
        "labs",
        "companions",
        "add_companion",
        "doctor",
        "trace",
    } <= set(protocol_methods(Backend))
    assert {"endpoints", "ct", "nat", "lb", "ipcache", "metrics", "flush", "text"} <= set(protocol_methods(MapsReader))


@pytest.mark.parametrize("impl", [EmbeddedBackend, KindBackend, BrokerBackend])
def test_capabilities_are_declared(impl):
    caps = impl.capabilities
    assert isinstance(caps, Capabilities) and caps.datapaths and caps.default_datapath == caps.datapaths[0]


def _hint(cls: type, name: str) -> object:
    fn = getattr(cls, name)
    return typing.get_type_hints(fn, vars(sys.modules[cls.__module__]) | vars(contract) | {"pd": pd})["return"]


def _returns(proto: type, name: str) -> object:
    return _hint(proto, name)


def check_value(proto: type, name: str, value: object) -> None:
    """``value`` is what ``proto.name``'s return annotation promises."""
    hint = _returns(proto, name)
    origin = typing.get_origin(hint)
    if hint is pd.DataFrame:
        assert isinstance(value, pd.DataFrame), (name, type(value))
    elif origin in (list, dict):
        assert isinstance(value, origin), (name, type(value))
        args = typing.get_args(hint)
        items = value if origin is list else list(value.items())
        for item in items:
            if origin is list:
                assert isinstance(item, typing.get_origin(args[0]) or args[0]), (name, item)
            else:
                assert isinstance(item[0], args[0]) and isinstance(item[1], args[1]), (name, item)
    elif origin is Iterator or (origin is not None and getattr(origin, "__name__", "") == "Iterator"):
        assert isinstance(value, Iterator), (name, type(value))
    elif origin is typing.Union or str(origin) == "<class 'types.UnionType'>":
        assert isinstance(value, typing.get_args(hint)), (name, type(value))
    elif origin is subprocess.CompletedProcess:
        assert isinstance(value, subprocess.CompletedProcess)
    elif isinstance(hint, type):
        assert isinstance(value, hint), (name, type(value), hint)


def exercise(be: Backend, node: str, pod: str) -> None:
    """Call every method of the contract on ``be`` and check what comes back."""
    schemas = {"nodes": tables.NODES, "pods": tables.PODS, "services": tables.SERVICES, "labs": tables.LABS}
    for name, schema in schemas.items():
        df = getattr(be, name)()
        check_value(Backend, name, df)
        schema.check(df)
        assert len(df), f"{be.name}: {name}() is empty"
    checks = {
        "is_up": be.is_up(),
        "settings": be.settings(),
        "existing_labs": be.existing_labs(),
        "companions": be.companions(),
        "doctor": be.doctor(),
        "resolve": be.resolve(pod),
        "argv": be.argv(pod, ["true"]),
        "run": be.run(node, ["true"]),
        "shell_env": be.shell_env(node),
        "capture_points": be.capture_points([f"{node}:eth0", f"{pod}:eth0"]),
        "external_address": be.external_address(),
        "monitor_lines": be.monitor_lines(node, json=True, duration=0.1),
        "observe_lines": be.observe_lines(node, last=5),
    }
    for name, value in checks.items():
        check_value(Backend, name, value)
    assert be.lab in set(be.labs().name) and checks["companions"] == []
    if not be.capabilities.companions:
        with pytest.raises(LabError, match="embedded backend"):
            be.add_companion("other")
    assert isinstance(checks["settings"], Settings) and checks["settings"].datapath in be.capabilities.datapaths
    assert all(isinstance(c, Check) for c in checks["doctor"])
    assert checks["resolve"] == PodRef("native", pod, checks["resolve"].node) and be.resolve(node) == NodeRef(node)
    assert all(isinstance(p, CapturePoint) for p in checks["capture_points"])
    assert [p.point for p in checks["capture_points"]] == [f"{node}:eth0", f"{pod}:eth0"]
    assert all(isinstance(line, str) for line in checks["observe_lines"])
    events = be.monitor(node, duration=0.2) if not be.capabilities.look_back else be.monitor(node, seconds=60)
    check_value(Backend, "monitor", events)
    tables.EVENTS.check(events)
    flows = be.flows(node, seconds=60)
    check_value(Backend, "flows", flows)
    tables.FLOWS.check(flows)
    if be.capabilities.trace:
        traced = be.trace([f"{pod}:eth0"], filter="tcp", during=lambda: be.run(pod, ["true"]))
        check_value(Backend, "trace", traced)
        tables.TRACE.check(traced)
    else:
        with pytest.raises(LabError, match="pwru"):  # one line saying what to run instead
            be.trace([f"{pod}:eth0"], filter="tcp")

    maps = be.maps(node)
    assert isinstance(maps, MapsReader) and maps.node == node
    for name, schema in {
        "endpoints": tables.ENDPOINTS,
        "ct": tables.CT,
        "nat": tables.NAT,
        "lb": tables.LB,
        "ipcache": tables.IPCACHE,
        "metrics": tables.METRICS,
    }.items():
        df = getattr(maps, name)()
        check_value(MapsReader, name, df)
        schema.check(df)
        assert set(df.node) <= {node}
    for what in ("endpoints", "ct", "nat", "lb", "ipcache", "metrics", "services"):
        check_value(MapsReader, "text", maps.text(what))
        check_value(MapsReader, "text", maps.text(what, output="json"))
    flushed = maps.flush("nat")
    check_value(MapsReader, "flush", flushed)
    assert flushed and all(path.startswith("/sys/fs/bpf/") for path in flushed)
    if be.capabilities.packet_sockets:
        points = be.capture_points([f"{pod}:eth0"])
        socks = be.packet_sockets(points)
        check_value(Backend, "packet_sockets", socks)
        assert len(socks) == 1 and socks[0].family.name == "AF_PACKET"
        socks[0].close()
    else:
        with pytest.raises(LabError):
            be.packet_sockets([])


# ------------------------------------------------------------------ both backends, for real
@pytest.mark.root
def test_embedded_backend_keeps_the_contract():
    with running_lab("ctr") as lab:
        exercise(lab.backend, "kind-worker", "client-pod")


def test_kind_backend_keeps_the_contract(monkeypatch, tmp_path):
    fakes = Fakes(monkeypatch, tmp_path)
    fakes.clusters("kind")
    be = KindBackend(lab="kind", use_k8s_client=False, monitor_startup=0.01)
    exercise(be, "kind-worker", "client-pod")
