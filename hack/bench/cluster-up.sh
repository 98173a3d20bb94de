#!/usr/bin/env bash
# Starts the benchmark's local cluster (or reuses it) and prints its kubeconfig path on
# stdout; everything else goes to stderr. It is hack/cluster-up.sh's cluster with these
# differences for load (docs/benchmarks.md):
#   - kube-controller-manager and kube-scheduler get --kube-api-qps/--kube-api-burst
#     raised (test/bench/kwokctl-bench.yaml), where hack/cluster-up.sh keeps the defaults;
#   - kube-apiserver gets a /16 Service range (the default /24 holds ~125 releases);
#   - the number of fake nodes is an argument (110 pods fit on each).
# The kwok Stages are the repository's (config/kwok/stages-*.yaml), unchanged.
#
# Usage: hack/bench/cluster-up.sh [NAME [NODES]]   (softfactory-bench, 4)
# hack/cluster-down.sh NAME removes it.
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
name=${1:-softfactory-bench}
nodes=${2:-4}
export KWOK_WORKDIR=${KWOK_WORKDIR:-$repo/.cache/kwok}

bin=$("$repo/hack/install-controlplane.sh" cluster)
export KWOK_KUBECTL_BINARY=$bin/kubectl

cluster_dir=$KWOK_WORKDIR/clusters/$name
kubeconfig=$cluster_dir/kubeconfig.yaml
log=$KWOK_WORKDIR/$name-kwokctl.log
# BENCH_COMPONENT_QPS=default keeps the controller-manager's and scheduler's default
# rate limits (test/bench/kwokctl-bench-default-qps.yaml), for comparison.
options=$repo/test/bench/kwokctl-bench.yaml
if [[ "${BENCH_COMPONENT_QPS:-raised}" == default ]]; then
  options=$repo/test/bench/kwokctl-bench-default-qps.yaml
fi
configs=("$options" "$repo/config/kwok/stages-kwok-fast.yaml" "$repo/config/kwok/stages-softfactory.yaml")
mkdir -p "$KWOK_WORKDIR"

kwokctl() { "$bin/kwokctl" "$@" --name "$name" >>"$log" 2>&1; }
kubectl() { "$bin/kubectl" --kubeconfig "$kubeconfig" "$@"; }
ready() { [[ -f "$kubeconfig" ]] && kubectl get --raw /readyz >/dev/null 2>&1; }
fail() {
  echo "bench cluster-up: $*; kwokctl's log follows ($log)" >&2
  tail -n 40 "$log" >&2 || true
  exit 1
}

checksum=$(cat "${configs[@]}" | sha256sum | cut -d' ' -f1)
if [[ -d "$cluster_dir" && "$(cat "$cluster_dir/softfactory-config.sha256" 2>/dev/null)" != "$checksum" ]]; then
  echo "Recreating cluster $name: its kwok configs changed since it was made." >&2
  "$repo/hack/cluster-down.sh" "$name" >&2
fi
if [[ -d "$cluster_dir" ]] && ! ready; then
  echo "Cluster $name exists but does not answer; recreating it." >&2
  "$repo/hack/cluster-down.sh" "$name" >&2
fi

if [[ ! -d "$cluster_dir" ]]; then
  echo "Creating cluster $name (kwokctl, binary runtime, $(basename "$options")) in $KWOK_WORKDIR..." >&2
  config_flags=()
  for c in "${configs[@]}"; do config_flags+=(--config "$c"); done
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

kwokctl scale node --replicas "$nodes" || fail "kwokctl scale node failed"
kubectl wait --for=condition=Ready node --all --timeout=300s >/dev/null || fail "the nodes did not become Ready"
kubectl wait --for=create serviceaccount/default -n default --timeout=60s >/dev/null ||
  fail "the default ServiceAccount was not created"

echo "Cluster $name is up with $nodes nodes: $(kubectl config view -o jsonpath='{.clusters[0].cluster.server}')" >&2
echo "$kubeconfig"
