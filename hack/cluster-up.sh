#!/usr/bin/env bash
# Starts the local cluster, or reuses the one already running, and prints the path of
# its kubeconfig on stdout (everything else goes to stderr).
#
# The cluster is kwokctl's "binary" runtime: real etcd, kube-apiserver,
# kube-controller-manager and kube-scheduler processes, built from source by
# hack/install-controlplane.sh, plus kwok standing in for the kubelets, so Deployments
# become Available and Jobs Complete with no container runtime, image or download.
# The Stages in config/kwok/ decide what happens to pods (docs/local-cluster.md).
#
# Usage: hack/cluster-up.sh [NAME]     (NAME defaults to softfactory)
#
# Everything lives under KWOK_WORKDIR (default: .cache/kwok in this checkout); nothing
# is added to ~/.kube/config or ~/.kwok. Every component listens on 127.0.0.1 only.
# hack/cluster-down.sh NAME stops and removes it.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
name=${1:-softfactory}
export KWOK_WORKDIR=${KWOK_WORKDIR:-$repo/.cache/kwok}
# The number of fake nodes. Two, so a scheduler decision is a real one.
nodes=${KWOK_NODES:-2}

bin=$("$repo/hack/install-controlplane.sh" cluster)
# kwokctl would download kubectl for its own use otherwise.
export KWOK_KUBECTL_BINARY=$bin/kubectl

cluster_dir=$KWOK_WORKDIR/clusters/$name
kubeconfig=$cluster_dir/kubeconfig.yaml
log=$KWOK_WORKDIR/$name-kwokctl.log
configs=("$repo/config/kwok/kwokctl.yaml" "$repo/config/kwok/stages-kwok-fast.yaml" "$repo/config/kwok/stages-softfactory.yaml")
mkdir -p "$KWOK_WORKDIR"

kwokctl() { "$bin/kwokctl" "$@" --name "$name" >>"$log" 2>&1; }
kubectl() { "$bin/kubectl" --kubeconfig "$kubeconfig" "$@"; }
ready() { [[ -f "$kubeconfig" ]] && kubectl get --raw /readyz >/dev/null 2>&1; }
fail() {
  echo "cluster-up: $*; kwokctl's log follows ($log)" >&2
  tail -n 40 "$log" >&2 || true
  exit 1
}

# A cluster made from other Stages or options would behave differently from what the
# repository says, so the configs' checksum decides whether an existing one is reused.
checksum=$(cat "${configs[@]}" | sha256sum | cut -d' ' -f1)
if [[ -d "$cluster_dir" && "$(cat "$cluster_dir/softfactory-config.sha256" 2>/dev/null)" != "$checksum" ]]; then
  echo "Recreating cluster $name: config/kwok/ changed since it was made." >&2
  "$repo/hack/cluster-down.sh" "$name" >&2
fi

if [[ -d "$cluster_dir" ]] && ! ready; then
  # Made earlier but no longer running (a reboot, a killed process). Its state is
  # disposable, and a fresh cluster comes up in seconds where `kwokctl start` on a
  # half-dead one can hang for minutes.
  echo "Cluster $name exists but does not answer; recreating it." >&2
  "$repo/hack/cluster-down.sh" "$name" >&2
fi

if [[ ! -d "$cluster_dir" ]]; then
  echo "Creating cluster $name (kwokctl, binary runtime) in $KWOK_WORKDIR..." >&2
  config_flags=()
  for c in "${configs[@]}"; do config_flags+=(--config "$c"); done
  # --kubeconfig '' keeps kwokctl out of ~/.kube/config; the cluster's own kubeconfig
  # is written in its directory either way.
  kwokctl create cluster "${config_flags[@]}" \
    --kubeconfig '' \
    --etcd-binary "$bin/etcd" \
    --kube-apiserver-binary "$bin/kube-apiserver" \
    --kube-controller-manager-binary "$bin/kube-controller-manager" \
    --kube-scheduler-binary "$bin/kube-scheduler" \
    --kwok-controller-binary "$bin/kwok" \
    --wait 2m || fail "kwokctl create cluster failed"
  echo "$checksum" >"$cluster_dir/softfactory-config.sha256"
fi
ready || fail "cluster $name is not ready"

# Fake nodes for the scheduler to place pods on; kwok keeps them Ready. Idempotent.
kwokctl scale node --replicas "$nodes" || fail "kwokctl scale node failed"
kubectl wait --for=condition=Ready node --all --timeout=60s >/dev/null || fail "the nodes did not become Ready"
# Pods need their namespace's default ServiceAccount, which the controller-manager makes.
kubectl wait --for=create serviceaccount/default -n default --timeout=60s >/dev/null ||
  fail "the default ServiceAccount was not created"

echo "Cluster $name is up: $("$bin/kubectl" --kubeconfig "$kubeconfig" config view -o jsonpath='{.clusters[0].cluster.server}')" >&2
echo "$kubeconfig"
