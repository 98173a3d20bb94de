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
# shellcheck source=hack/lib/kwok-cluster.sh
source "$repo/hack/lib/kwok-cluster.sh"

# Two fake nodes (KWOK_NODES), so a scheduler decision is a real one.
kwok_cluster_up "$repo" "${1:-softfactory}" "${KWOK_NODES:-2}" 60s \
  "$repo/config/kwok/kwokctl.yaml" "$repo/config/kwok/stages-kwok-fast.yaml" "$repo/config/kwok/stages-softfactory.yaml"
