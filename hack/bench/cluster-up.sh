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
# shellcheck source=hack/lib/kwok-cluster.sh
source "$repo/hack/lib/kwok-cluster.sh"

# BENCH_COMPONENT_QPS=default keeps the controller-manager's and scheduler's default
# rate limits (test/bench/kwokctl-bench-default-qps.yaml), for comparison.
options=$repo/test/bench/kwokctl-bench.yaml
if [[ "${BENCH_COMPONENT_QPS:-raised}" == default ]]; then
  options=$repo/test/bench/kwokctl-bench-default-qps.yaml
fi
kwok_cluster_up "$repo" "${1:-softfactory-bench}" "${2:-4}" 300s \
  "$options" "$repo/config/kwok/stages-kwok-fast.yaml" "$repo/config/kwok/stages-softfactory.yaml"
