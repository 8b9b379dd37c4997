#!/usr/bin/env bash
# Delete the live lab's kind cluster (same as `labkit down --backend kind`).
#   cluster/down-kind.sh            # cluster "kind"
#   LAB=alice cluster/down-kind.sh
set -euo pipefail
LAB="${LAB:-kind}"
echo "==> kind delete cluster --name $LAB"
kind delete cluster --name "$LAB"
