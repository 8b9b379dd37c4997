"""Bring the live lab up and down: kind + Cilium (helm) + the lab's manifests.

Every step is one argv list, built by :func:`up_steps` so that tests (and `up-kind.sh`, which
does the same steps by hand) can see exactly what runs. The cluster is declared once in
``cluster/``: ``kind.yaml``, ``cilium-values.yaml`` (the blog's helm values) and
``manifests/``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

from ..errors import LabError
from . import tools
from . import versions as V

REPO = Path(__file__).resolve().parents[2]
CILIUM_NS = "kube-system"
# Chart images are referenced by digest; an image loaded with `kind load` has no registry
# digest, so an offline install (images preloaded by images/preload.sh) turns digests off.
# These values change only how images are named, never the datapath.
OFFLINE_SETS = (
    "image.useDigest=false",
    "operator.image.useDigest=false",
    "hubble.relay.image.useDigest=false",
    "hubble.ui.frontend.image.useDigest=false",
    "hubble.ui.backend.image.useDigest=false",
    "envoy.image.useDigest=false",
)
# What `rollout status` waits for after helm install (the 1.17 chart with the blog's values).
ROLLOUTS = (
    "daemonset/cilium",
    "daemonset/cilium-envoy",
    "deployment/cilium-operator",
    "deployment/hubble-relay",
    "deployment/hubble-ui",
)


def context(lab: str) -> str:
    """kubectl context kind creates for cluster ``lab``."""
    return f"kind-{lab}"


def offline_chart(repo: Path = REPO) -> Path:
    """Where images/preload.sh leaves the helm chart for offline installs."""
    return repo / "images" / "cache" / f"cilium-{V.CILIUM_VERSION}.tgz"


@dataclass(frozen=True)
class Step:
    what: str  # one line for the learner
    argv: tuple[str, ...]
    skip_if: str = ""  # "cluster-exists" / "release-exists": checked before running


def manifest_namespaces(path: Path) -> list[str]:
    """Namespaces the manifests in ``path`` (a file or a directory) put objects into."""
    files = sorted(path.glob("*.y*ml")) if path.is_dir() else [path]
    out: list[str] = []
    for f in files:
        for doc in yaml.safe_load_all(f.read_text()):
            if not isinstance(doc, dict) or doc.get("kind") == "Namespace":
                continue
            ns = (doc.get("metadata") or {}).get("namespace", "default")
            if ns not in out:
                out.append(ns)
    return out


def up_steps(lab: str = "kind", repo: Path = REPO, *, offline: bool = False, timeout: int = 600) -> list[Step]:
    cluster = repo / "cluster"
    ctx = context(lab)
    kubectl = ("kubectl", "--context", ctx)
    t = f"--timeout={timeout}s"
    steps = [
        Step(
            "create the kind cluster (3 nodes, no default CNI, no kube-proxy)",
            (
                "kind",
                "create",
                "cluster",
                "--name",
                lab,
                "--config",
                str(cluster / "kind.yaml"),
                "--image",
                V.kind_node_image(offline),
            ),
            skip_if="cluster-exists",
        ),
    ]
    if offline:
        chart = str(offline_chart(repo))
    else:
        chart = "cilium/cilium"
        steps += [
            Step(
                "add the Cilium helm repository",
                ("helm", "repo", "add", "cilium", V.CILIUM_CHART_REPO, "--force-update"),
                skip_if="release-exists",
            ),
            Step("refresh the Cilium helm repository", ("helm", "repo", "update", "cilium"), skip_if="release-exists"),
        ]
    install = [
        "helm",
        "--kube-context",
        ctx,
        "install",
        "cilium",
        chart,
        "--version",
        V.CILIUM_VERSION,
        "--namespace",
        CILIUM_NS,
        "-f",
        str(cluster / "cilium-values.yaml"),
    ]
    for s in OFFLINE_SETS if offline else ():
        install += ["--set", s]
    steps.append(
        Step(f"install Cilium {V.CILIUM_VERSION} with the blog's helm values", tuple(install), skip_if="release-exists")
    )
    for r in ROLLOUTS:
        steps.append(Step(f"wait for {r}", (*kubectl, "-n", CILIUM_NS, "rollout", "status", r, t)))
    steps.append(
        Step("wait for the nodes to be Ready", (*kubectl, "wait", "--for=condition=Ready", "nodes", "--all", t))
    )
    steps += apply_steps(lab, [cluster / "manifests"], timeout=timeout)
    return steps


def apply_steps(lab: str, paths: Sequence[str | Path], *, timeout: int = 300) -> list[Step]:
    ctx = context(lab)
    steps: list[Step] = []
    namespaces: list[str] = []
    for p in map(Path, paths):
        if not p.exists():
            raise LabError(f"no such manifest file or directory: {p}", exit_code=2)
        steps.append(Step(f"apply {p.name}", ("kubectl", "--context", ctx, "apply", "-f", str(p))))
        for ns in manifest_namespaces(p):
            if ns not in namespaces:
                namespaces.append(ns)
    for ns in namespaces:
        steps.append(
            Step(
                f"wait for the pods in {ns} to be Ready",
                (
                    "kubectl",
                    "--context",
                    ctx,
                    "-n",
                    ns,
                    "wait",
                    "--for=condition=Ready",
                    "pods",
                    "--all",
                    f"--timeout={timeout}s",
                ),
            )
        )
    return steps


def cluster_exists(lab: str) -> bool:
    r = tools.run(["kind", "get", "clusters"], check=False, timeout=60)
    return r.returncode == 0 and lab in r.stdout.split()


def release_exists(lab: str) -> bool:
    r = tools.run(
        ["helm", "--kube-context", context(lab), "status", "cilium", "--namespace", CILIUM_NS], check=False, timeout=60
    )
    return r.returncode == 0


def run_steps(steps: Sequence[Step], lab: str, *, log: Callable[[str], None] = print, timeout: int = 900) -> list[str]:
    """Run the steps in order (skipping done ones); returns what `kubectl apply` printed."""
    checks = {"cluster-exists": lambda: cluster_exists(lab), "release-exists": lambda: release_exists(lab)}
    known: dict[str, bool] = {}
    applied: list[str] = []
    for s in steps:
        if s.skip_if:
            if s.skip_if not in known:
                known[s.skip_if] = checks[s.skip_if]()
            if known[s.skip_if]:
                log(f"==> {s.what}: already done, skipped")
                continue
        log(f"==> {s.what}: {' '.join(s.argv)}")
        r = tools.run(s.argv, timeout=timeout)
        if "apply" in s.argv:
            applied += [ln.strip() for ln in r.stdout.splitlines() if ln.strip()]
    return applied


def up(
    lab: str = "kind",
    repo: Path = REPO,
    *,
    offline: bool = False,
    timeout: int = 600,
    log: Callable[[str], None] = print,
) -> str:
    """Create (or complete) the live lab. Safe to run again: done steps are skipped."""
    tools.require_all()
    if offline and not offline_chart(repo).exists():
        raise LabError(
            f"offline install needs the chart at {offline_chart(repo)}: run images/preload.sh first", exit_code=1
        )
    run_steps(up_steps(lab, repo, offline=offline, timeout=timeout), lab, log=log, timeout=timeout + 60)
    return f"lab {lab} is up: kind cluster {lab} with Cilium {V.CILIUM_VERSION} (kubectl context {context(lab)})"


def apply(
    lab: str, paths: Sequence[str | Path], *, timeout: int = 300, log: Callable[[str], None] = print
) -> list[str]:
    """`kubectl apply -f` each path, wait for the pods; returns kubectl's lines ("pod/x created")."""
    tools.require("kubectl")
    return run_steps(apply_steps(lab, paths, timeout=timeout), lab, log=log, timeout=timeout + 60)


def down(lab: str = "kind", *, log: Callable[[str], None] = print) -> str:
    """Delete the kind cluster (kind does nothing if it does not exist)."""
    tools.require("kind")
    argv = ("kind", "delete", "cluster", "--name", lab)
    log(f"==> delete the kind cluster: {' '.join(argv)}")
    tools.run(argv, timeout=300)
    return f"lab {lab} is down: kind cluster {lab} deleted"
