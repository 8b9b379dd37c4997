"""Pinned versions of the live (kind) backend: the ONE place they are written.

``bringup.py``, ``cluster/up-kind.sh`` (reads the ``NAME = "value"`` lines below with sed),
``images/workstation/Dockerfile`` (its ARG defaults) and ``images/classroom-images.txt`` all
follow these values; ``tests/test_live_images.py`` checks that they agree. Keep every value
on one line of the form ``NAME = "value"``.
"""

from __future__ import annotations

# Cilium, exactly the blog's release (helm chart and images share the version).
CILIUM_VERSION = "1.17.6"
CILIUM_CHART_REPO = "https://helm.cilium.io"
# Images the 1.17.6 chart deploys besides cilium/operator/relay (from the chart's values).
HUBBLE_UI_VERSION = "0.13.2"
CILIUM_ENVOY_IMAGE = "quay.io/cilium/cilium-envoy:v1.33.4-1752151664-7c2edb0b44cf95f326d628b837fcdd845102ba68"

# Tools installed in the workstation image (and recommended by `labkit doctor`).
KIND_VERSION = "0.29.0"
KIND_NODE_IMAGE = "kindest/node:v1.33.1@sha256:050072256b9a903bd914c0b2866828150cb229cea0efe5892e2b644d5dd3b34f"
KUBECTL_VERSION = "1.33.1"
HELM_VERSION = "3.18.4"
CILIUM_CLI_VERSION = "0.18.5"
DOCKER_CLI_VERSION = "28.3.2"

# Oldest versions the backend accepts (older -> LabError naming the tool).
MIN_DOCKER = "20.10.0"
MIN_KIND = "0.20.0"
MIN_KUBECTL = "1.27.0"
MIN_HELM = "3.12.0"


def kind_node_image(offline: bool = False) -> str:
    """The node image; offline (loaded from a `docker save` tar, no registry digest) by tag only."""
    return KIND_NODE_IMAGE.split("@", 1)[0] if offline else KIND_NODE_IMAGE


def cilium_images() -> list[str]:
    """Every image `helm install cilium --version CILIUM_VERSION` with the lab's values pulls."""
    v = CILIUM_VERSION
    return [
        f"quay.io/cilium/cilium:v{v}",
        f"quay.io/cilium/operator-generic:v{v}",
        f"quay.io/cilium/hubble-relay:v{v}",
        f"quay.io/cilium/hubble-ui:v{HUBBLE_UI_VERSION}",
        f"quay.io/cilium/hubble-ui-backend:v{HUBBLE_UI_VERSION}",
        CILIUM_ENVOY_IMAGE,
    ]
