#!/usr/bin/env bash
# The benchmark behind `make bench-smoke` and `make bench-cluster` (docs/benchmarks.md).
#
#   hack/bench.sh smoke [FLAGS]   20 releases, every measurement once, a few minutes (CI)
#   hack/bench.sh full  [FLAGS]   up to 1,000 releases and the unrelated load (~45 min)
#   hack/bench.sh jobs  [FLAGS]   100 releases with backup and migration Jobs, each through
#                                 10 revisions: Jobs left, RSS, writes per revision
#                                 (-jobs-releases N -jobs-revisions R for other sizes)
#
# Each run gets a fresh cluster of its own (softfactory-bench-<profile>, beside the demo's
# and the e2e suite's): what is already in a cluster changes what is measured. It builds
# the operator from this checkout, installs the CRD, runs test/bench (go run -tags bench)
# and removes the cluster afterwards (BENCH_KEEP_CLUSTER=1 keeps it). FLAGS go to the
# benchmark program (go run -tags bench ./test/bench -h lists them), e.g.
# -operator-args="--kube-api-qps=100".
#
# Results: .cache/bench/<profile>/ (results.json, summary.md, operator.log, and for the
# full profile benchmarks.png; BENCH_OUT overrides). BENCH_NODES overrides the number of
# fake nodes (110 pods fit on each); BENCH_COMPONENT_QPS=default keeps the
# controller-manager's and scheduler's default API rate limits (hack/bench/cluster-up.sh);
# BENCH_OPERATOR=path runs that operator binary instead of building ./cmd (to compare
# builds; the recorded commit is then the checkout's, not the binary's); BENCH_CLUSTER
# names the cluster, so that two runs of one profile can share the machine (their times
# then say little; their memory figures still hold).
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
profile=${1:-smoke}
shift || true
case "$profile" in
  smoke) nodes=${BENCH_NODES:-4} ;;
  # 1,000 releases mid-flip (4,000 pods) and 10,000 unrelated pods, with room to spare.
  full) nodes=${BENCH_NODES:-140} ;;
  # 100 releases mid-flip (400 pods) and their Job pods at once; completed pods take no room.
  jobs) nodes=${BENCH_NODES:-8} ;;
  *)
    echo "usage: $0 smoke|full|jobs [benchmark flags]" >&2
    exit 2
    ;;
esac
name=${BENCH_CLUSTER:-softfactory-bench-$profile}
out=${BENCH_OUT:-$repo/.cache/bench/$profile}
export KWOK_WORKDIR=${KWOK_WORKDIR:-$repo/.cache/kwok}
mkdir -p "$out"

bin=$(hack/install-controlplane.sh cluster)
hack/cluster-down.sh "$name" 2>/dev/null || true
if [[ "${BENCH_KEEP_CLUSTER:-}" != 1 ]]; then
  trap 'hack/cluster-down.sh "$name"' EXIT
fi
kubeconfig=$(hack/bench/cluster-up.sh "$name" "$nodes")
kubectl() { "$bin/kubectl" --kubeconfig "$kubeconfig" "$@"; }

echo "Installing the CRD" >&2
kubectl apply --server-side -f config/crd/bases >/dev/null
if [[ "${BENCH_PROMETHEUSRULE_CRD:-}" == 1 ]]; then
  # A stand-in for prometheus-operator's CRD: the operator then also keeps (here: looks
  # up) a PrometheusRule per release. The figures in docs/benchmarks.md are without it.
  kubectl apply --server-side -f test/bench/testdata/prometheusrules-crd.yaml >/dev/null
fi
# A CRD has no conditions for a moment after it is created, and kubectl wait fails on
# that rather than waiting: retry.
for _ in $(seq 60); do
  kubectl wait --for=condition=Established crd/softfactoryreleases.deploy.softfactory.io --timeout=5s >/dev/null 2>&1 && break
  sleep 1
done
kubectl wait --for=condition=Established crd/softfactoryreleases.deploy.softfactory.io --timeout=5s >/dev/null

# The watcher's own judgement (traffic moved, outages) first: the run fails on it.
go test -tags bench ./test/bench >&2

echo "Building the operator and the benchmark" >&2
operator=${BENCH_OPERATOR:-}
if [[ -z "$operator" ]]; then
  operator=$out/manager
  go build -o "$operator" ./cmd
fi
go build -tags bench -o "$out/bench" ./test/bench

echo "Load before the run: $(cut -d' ' -f1-3 /proc/loadavg) ($(nproc) CPUs)" >&2
if [[ "${BENCH_COMPONENT_QPS:-raised}" == default ]]; then
  qps="kube-controller-manager and kube-scheduler at their default 20 QPS (burst 30)"
else
  qps="kube-controller-manager and kube-scheduler at --kube-api-qps=500 --kube-api-burst=1000"
fi
"$out/bench" -profile "$profile" -kubeconfig "$kubeconfig" -operator "$operator" -out "$out" \
  -cluster "kwokctl binary runtime, Kubernetes v1.37.2, $nodes kwok nodes, $qps" "$@"
if [[ "$profile" == full ]]; then
  "$out/bench" -plot "$out/results.json" -png "$out/benchmarks.png"
  echo "Plot: $out/benchmarks.png (docs/benchmarks.png is the one the docs show)" >&2
fi
