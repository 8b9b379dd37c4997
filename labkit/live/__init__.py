"""The live backend: a real kind cluster with Cilium 1.17.6, installed with the blog's values.

    from labkit.live import KindBackend
    be = KindBackend(lab="kind")
    be.up(); be.maps("kind-worker").ct()

Modules, one job each: ``versions`` (pins), ``tools`` (find/check/run docker, kind, helm,
kubectl; ``doctor``), ``bringup`` (up/down/apply), ``kube`` (objects as JSON),
``parse_bpf`` / ``parse_monitor`` / ``parse_k8s`` (Cilium and kubectl output -> shared
tables), ``backend`` (``KindBackend``).
"""

from .backend import KindBackend, LiveMaps
from .bringup import down, up
from .tools import doctor
from .versions import CILIUM_VERSION

__all__ = ["KindBackend", "LiveMaps", "up", "down", "doctor", "CILIUM_VERSION"]
