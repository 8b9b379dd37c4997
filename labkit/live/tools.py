"""The host tools of the live backend: find them, check their versions, run them.

docker, kind, helm and kubectl are looked up on PATH at call time (so a test can put fakes
first on PATH). A missing or too old tool is a :class:`LabError` naming the tool and how to
install it. :func:`run` is the one way the live backend starts a subprocess: argv lists only.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass

from ..doctor import Check
from ..errors import LabError
from . import versions as V


@dataclass(frozen=True)
class Tool:
    name: str
    minimum: str
    pinned: str
    version_argv: tuple[str, ...]
    install: str


TOOLS: dict[str, Tool] = {
    t.name: t
    for t in (
        Tool(
            "docker",
            V.MIN_DOCKER,
            "",
            ("docker", "version", "--format", "{{.Client.Version}}"),
            "install Docker Engine: https://docs.docker.com/engine/install/",
        ),
        Tool(
            "kind",
            V.MIN_KIND,
            V.KIND_VERSION,
            ("kind", "version"),
            f"install kind v{V.KIND_VERSION}: https://kind.sigs.k8s.io/docs/user/quick-start/#installation",
        ),
        Tool(
            "kubectl",
            V.MIN_KUBECTL,
            V.KUBECTL_VERSION,
            ("kubectl", "version", "--client", "-o", "json"),
            f"install kubectl v{V.KUBECTL_VERSION}: https://kubernetes.io/docs/tasks/tools/",
        ),
        Tool(
            "helm",
            V.MIN_HELM,
            V.HELM_VERSION,
            ("helm", "version", "--short"),
            f"install helm v{V.HELM_VERSION}: https://helm.sh/docs/intro/install/",
        ),
    )
}

_VERSION = re.compile(r"v?(\d+)\.(\d+)\.(\d+)")


def parse_version(text: str) -> tuple[int, int, int] | None:
    """The first x.y.z in a tool's version output (kubectl's JSON: clientVersion.gitVersion)."""
    text = text.strip()
    if text.startswith("{"):
        try:
            text = json.loads(text)["clientVersion"]["gitVersion"]
        except (ValueError, KeyError, TypeError):
            pass
    m = _VERSION.search(text)
    return tuple(int(x) for x in m.groups()) if m else None  # type: ignore[return-value]


def _vt(s: str) -> tuple[int, ...]:
    return tuple(int(x) for x in s.split("."))


def which(name: str) -> str | None:
    return shutil.which(name)


def version(name: str) -> tuple[int, int, int]:
    """The installed version of ``name``; LabError if missing or unreadable."""
    tool = TOOLS[name]
    if which(name) is None:
        raise LabError(f"{name} not found on PATH: {tool.install}", exit_code=1)
    try:
        r = subprocess.run(list(tool.version_argv), capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise LabError(f"cannot run `{' '.join(tool.version_argv)}` ({e}): {tool.install}", exit_code=1) from e
    v = parse_version(r.stdout) if r.returncode == 0 else None
    if v is None:
        raise LabError(
            f"cannot read the version of {name} from `{' '.join(tool.version_argv)}`: {tool.install}", exit_code=1
        )
    return v


def require(name: str) -> str:
    """Path of ``name``, checked to be at least the minimum version; LabError otherwise."""
    tool = TOOLS[name]
    v = version(name)
    if v < _vt(tool.minimum):
        got = ".".join(map(str, v))
        raise LabError(f"{name} {got} is too old (labkit needs >= {tool.minimum}): {tool.install}", exit_code=1)
    return which(name)  # type: ignore[return-value]


def require_all(names: Sequence[str] = ("docker", "kind", "kubectl", "helm")) -> None:
    for n in names:
        require(n)


def run(
    argv: Sequence[str], *, timeout: float | None = 120, input: str | None = None, check: bool = True
) -> subprocess.CompletedProcess:
    """Run an argv list (never a shell string); LabError (exit 1) on failure when ``check``."""
    argv = [str(a) for a in argv]
    if not argv:
        raise LabError("empty command", exit_code=2)
    if which(argv[0]) is None:
        hint = TOOLS[argv[0]].install if argv[0] in TOOLS else f"install {argv[0]}"
        raise LabError(f"{argv[0]} not found on PATH: {hint}", exit_code=1)
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, input=input)
    except subprocess.TimeoutExpired as e:
        raise LabError(
            f"`{' '.join(argv)}` did not finish within {timeout:g}s: "
            "check the cluster with `labkit doctor --backend kind`",
            exit_code=1,
        ) from e
    except OSError as e:
        raise LabError(f"cannot run `{argv[0]}`: {e}", exit_code=1) from e
    if check and r.returncode != 0:
        raise LabError(
            f"`{' '.join(argv)}` failed (exit {r.returncode}): {_last_line(r.stderr or r.stdout)}", exit_code=1
        )
    return r


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in (text or "").splitlines() if ln.strip()]
    return lines[-1] if lines else "no output"


# --------------------------------------------------------------------------------- doctor


def doctor(lab: str = "kind") -> list[Check]:
    """Checks for `labkit doctor --backend kind`, in order.

    Tools and versions first; then the Docker engine; then, only if those pass, the cluster:
    it exists, its nodes are Ready, Cilium, its operator and Hubble Relay are ready, and the
    lab's pods run.
    """
    out: list[Check] = []

    def add(name: str, ok: bool, fix: str = "") -> None:
        out.append(Check(name, ok, fix=fix))

    tools_ok = True
    for name, tool in TOOLS.items():
        label = f"{name} >= {tool.minimum}"
        try:
            v = version(name)
        except LabError as e:
            add(label, False, str(e))
            tools_ok = False
            continue
        got = ".".join(map(str, v))
        ok = v >= _vt(tool.minimum)
        tools_ok &= ok
        add(f"{label} (found {got})", ok, "" if ok else tool.install)
    if not tools_ok:
        add("cluster checks", False, "fix the tools above first")
        return out

    r = run(["docker", "info", "--format", "{{.ServerVersion}}"], check=False, timeout=30)
    engine = r.returncode == 0 and r.stdout.strip() != ""
    add(
        "docker engine reachable",
        engine,
        "" if engine else "start the Docker engine (and let your user use it: `docker info` must work)",
    )
    if not engine:
        return out

    r = run(["kind", "get", "clusters"], check=False, timeout=30)
    exists = lab in r.stdout.split()
    add(f"kind cluster '{lab}' exists", exists, "" if exists else f"run `labkit up --backend kind --lab {lab}`")
    if not exists:
        return out

    ctx = f"kind-{lab}"

    def kjson(*args: str) -> dict | None:
        r = run(["kubectl", "--context", ctx, *args, "-o", "json"], check=False, timeout=30)
        if r.returncode != 0:
            return None
        try:
            return json.loads(r.stdout)
        except ValueError:
            return None

    nodes = kjson("get", "nodes") or {"items": []}
    ready = [n for n in nodes.get("items", []) if _condition(n, "Ready")]
    ok = bool(nodes["items"]) and len(ready) == len(nodes["items"])
    add(
        f"nodes Ready ({len(ready)}/{len(nodes['items'])})",
        ok,
        "" if ok else "wait for Cilium to start, or see `kubectl get nodes` / `kubectl -n kube-system get pods`",
    )

    ds = kjson("-n", "kube-system", "get", "daemonset", "cilium") or {}
    st = ds.get("status", {})
    want, have = st.get("desiredNumberScheduled", 0), st.get("numberReady", 0)
    ok = want > 0 and have == want
    add(
        f"cilium agents ready ({have}/{want})",
        ok,
        "" if ok else f"run `labkit up --backend kind --lab {lab}` (installs Cilium {V.CILIUM_VERSION})",
    )
    ver = _image_tag(ds)
    if ver is not None:
        ok = ver == f"v{V.CILIUM_VERSION}"
        add(
            f"cilium version {V.CILIUM_VERSION} (found {ver})",
            ok,
            "" if ok else "recreate the lab: `labkit down --backend kind` then `labkit up --backend kind`",
        )

    for dep, what in (("cilium-operator", "cilium operator"), ("hubble-relay", "hubble relay")):
        d = kjson("-n", "kube-system", "get", "deployment", dep) or {}
        want = d.get("spec", {}).get("replicas", 0)
        have = d.get("status", {}).get("readyReplicas", 0)
        ok = want > 0 and have >= want
        add(
            f"{what} ready ({have}/{want})",
            ok,
            "" if ok else f"see `kubectl --context {ctx} -n kube-system describe deployment {dep}`",
        )

    pods = kjson("-n", "native", "get", "pods") or {"items": []}
    items = pods.get("items", [])
    ready = [p for p in items if _condition(p, "Ready")]
    ok = bool(items) and len(ready) == len(items)
    add(
        f"lab pods Ready in namespace native ({len(ready)}/{len(items)})",
        ok,
        "" if ok else f"run `labkit apply --backend kind --lab {lab} cluster/manifests`",
    )
    return out


def _condition(obj: dict, kind: str) -> bool:
    return any(
        c.get("type") == kind and c.get("status") == "True" for c in obj.get("status", {}).get("conditions", []) or []
    )


def _image_tag(ds: dict) -> str | None:
    for c in ds.get("spec", {}).get("template", {}).get("spec", {}).get("containers", []) or []:
        if c.get("name") == "cilium-agent":
            ref = c.get("image", "").split("@", 1)[0]
            return ref.rsplit(":", 1)[1] if ":" in ref.rsplit("/", 1)[-1] else None
    return None
