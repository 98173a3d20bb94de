#!/usr/bin/env bash
# Stops and removes a local cluster made by hack/cluster-up.sh: its processes, its etcd
# data and its directory under KWOK_WORKDIR. Doing it twice is fine.
#
# Usage: hack/cluster-down.sh [NAME]     (NAME defaults to softfactory)
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
name=${1:-softfactory}
export KWOK_WORKDIR=${KWOK_WORKDIR:-$repo/.cache/kwok}
cluster_dir=$KWOK_WORKDIR/clusters/$name

if [[ ! -d "$cluster_dir" ]]; then
  echo "No cluster $name in $KWOK_WORKDIR." >&2
  exit 0
fi
bin=$("$repo/hack/install-controlplane.sh" cluster)
export KWOK_KUBECTL_BINARY=$bin/kubectl
# kwokctl removes the cluster's context from the kubeconfig it is given; cluster-up never
# added one anywhere, so it is given a file that does not exist rather than ~/.kube/config.
"$bin/kwokctl" delete cluster --name "$name" --kubeconfig "$KWOK_WORKDIR/no-such.kubeconfig" \
  >>"$KWOK_WORKDIR/$name-kwokctl.log" 2>&1 || {
  echo "kwokctl delete cluster failed; see $KWOK_WORKDIR/$name-kwokctl.log" >&2
  exit 1
}
rm -rf "$cluster_dir" "$KWOK_WORKDIR/$name-kwokctl.log"
echo "Cluster $name is gone." >&2
