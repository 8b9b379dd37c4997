#!/usr/bin/env bash
# Pre-load every image of images/classroom-images.txt for an offline classroom.
#
#   images/preload.sh pull          # with internet: pull the images, save them and the Cilium
#                                   # helm chart to images/cache/
#   images/preload.sh load [LAB]    # offline: docker load the saved images, then `kind load`
#                                   # them into the kind cluster LAB (default: kind)
#
# Then bring the lab up with `labkit up --backend kind --offline` (or OFFLINE=1 cluster/up-kind.sh):
# it installs Cilium from the saved chart and refers to the images by tag, because images
# loaded from a tar carry no registry digest.
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
REPO="$(dirname "$HERE")"
CACHE="$HERE/cache"
TAR="$CACHE/classroom-images.tar"
# the one place versions are written
CILIUM_VERSION="$(sed -n 's/^CILIUM_VERSION = "\(.*\)"/\1/p' "$REPO/labkit/live/versions.py")"

# the list without comments; the kind node image by tag only (see above)
images() { grep -v '^\s*#' "$HERE/classroom-images.txt" | sed '/^\s*$/d'; }
by_tag() { echo "${1%%@*}"; }

case "${1:-}" in
pull)
    mkdir -p "$CACHE"
    saved=()
    for img in $(images); do
        echo "==> docker pull $img"
        docker pull "$img"
        if [ "$img" != "$(by_tag "$img")" ]; then
            docker tag "$img" "$(by_tag "$img")"
        fi
        saved+=("$(by_tag "$img")")
    done
    echo "==> docker save -> $TAR"
    docker save -o "$TAR" "${saved[@]}"
    echo "==> helm pull cilium $CILIUM_VERSION -> $CACHE"
    helm repo add cilium https://helm.cilium.io --force-update
    helm pull cilium/cilium --version "$CILIUM_VERSION" -d "$CACHE"
    ;;
load)
    LAB="${2:-kind}"
    echo "==> docker load < $TAR"
    docker load -i "$TAR"
    for img in $(images); do
        case "$img" in kindest/node:*) continue ;; esac    # the node image runs the nodes, it is not loaded into them
        echo "==> kind load docker-image $(by_tag "$img") --name $LAB"
        kind load docker-image "$(by_tag "$img")" --name "$LAB"
    done
    ;;
*)
    echo "usage: $0 pull | load [LAB]" >&2
    exit 2
    ;;
esac
