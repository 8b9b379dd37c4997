#!/usr/bin/env bash
# Bring the live lab up by hand, one visible step at a time: the same steps as
# `labkit up --backend kind` (labkit/live/bringup.py).
#
#   cluster/up-kind.sh               # cluster "kind" (nodes kind-control-plane, kind-worker, kind-worker2)
#   LAB=alice cluster/up-kind.sh     # another cluster name
#   OFFLINE=1 cluster/up-kind.sh     # images and chart preloaded by images/preload.sh
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
REPO="$(dirname "$HERE")"
LAB="${LAB:-kind}"
CTX="kind-$LAB"
TIMEOUT="${TIMEOUT:-600s}"

# Versions are written once, in labkit/live/versions.py.
ver() { sed -n "s/^$1 = \"\(.*\)\"/\1/p" "$REPO/labkit/live/versions.py"; }
CILIUM_VERSION="$(ver CILIUM_VERSION)"
KIND_NODE_IMAGE="$(ver KIND_NODE_IMAGE)"

step() { echo; echo "==> $*"; }

# 1. The kind cluster: control-plane + 2 workers, no default CNI, no kube-proxy
#    (cluster/kind.yaml). Skipped if it already exists.
if [ "${OFFLINE:-}" = 1 ]; then
    KIND_NODE_IMAGE="${KIND_NODE_IMAGE%%@*}"     # a loaded image has no registry digest
fi
if kind get clusters 2>/dev/null | grep -qx "$LAB"; then
    step "kind cluster $LAB exists, skipping creation"
else
    step "kind create cluster --name $LAB"
    kind create cluster --name "$LAB" --config "$HERE/kind.yaml" --image "$KIND_NODE_IMAGE"
fi

# 2. Cilium, with the blog's helm values (cluster/cilium-values.yaml). The nodes stay
#    NotReady until a CNI runs, so this comes before any waiting.
if helm --kube-context "$CTX" status cilium --namespace kube-system >/dev/null 2>&1; then
    step "Cilium already installed, skipping"
else
    if [ "${OFFLINE:-}" = 1 ]; then
        CHART="$REPO/images/cache/cilium-$CILIUM_VERSION.tgz"
        SETS=(--set image.useDigest=false --set operator.image.useDigest=false
              --set hubble.relay.image.useDigest=false --set hubble.ui.frontend.image.useDigest=false
              --set hubble.ui.backend.image.useDigest=false --set envoy.image.useDigest=false)
    else
        step "helm repo add cilium"
        helm repo add cilium https://helm.cilium.io --force-update
        helm repo update cilium
        CHART=cilium/cilium
        SETS=()
    fi
    step "helm install cilium $CILIUM_VERSION"
    helm --kube-context "$CTX" install cilium "$CHART" --version "$CILIUM_VERSION" \
        --namespace kube-system -f "$HERE/cilium-values.yaml" "${SETS[@]}"
fi

# 3. Wait for the Cilium agents, Envoy, the operator and Hubble (relay + UI), then the nodes.
for r in daemonset/cilium daemonset/cilium-envoy deployment/cilium-operator deployment/hubble-relay deployment/hubble-ui; do
    step "wait for $r"
    kubectl --context "$CTX" -n kube-system rollout status "$r" --timeout="$TIMEOUT"
done
step "wait for the nodes"
kubectl --context "$CTX" wait --for=condition=Ready nodes --all --timeout="$TIMEOUT"

# 4. The blog's workloads: webpod (2x traefik/whoami) + service, curl-pod, client-pod.
step "kubectl apply -f cluster/manifests/"
kubectl --context "$CTX" apply -f "$HERE/manifests"
step "wait for the pods in namespace native"
kubectl --context "$CTX" -n native wait --for=condition=Ready pods --all --timeout="$TIMEOUT"

step "ready: try  kubectl --context $CTX -n native get pods -o wide"
