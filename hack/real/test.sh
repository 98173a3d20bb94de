#!/usr/bin/env bash
# Runs the real-cluster suite (test/real) and removes its cluster afterwards, whatever
# happens: a failed spec, Ctrl-C, or a kill of this script (TERM). The suite starts the
# cluster itself (hack/real/cluster-up.sh softfactory-real-test) and normally removes it
# in its AfterSuite; the trap here covers a run that never got there.
#
# Usage: hack/real/test.sh [go test flags...]      (root)
# REAL_KEEP_CLUSTER=1 keeps the cluster for a look; hack/real/cluster-down.sh
# softfactory-real-test removes it later.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
cluster=softfactory-real-test
if [[ $(id -u) != 0 ]]; then
  echo "test-real needs root: network namespaces, containerd, kubelet." >&2
  exit 1
fi
suite=""
teardown() {
  local rc=$?
  # Interrupted: let the suite run its AfterSuite (Ginkgo does on SIGINT) first.
  # go test does not pass SIGINT on to the test binary it runs: signal both.
  if [[ -n "$suite" ]] && kill -0 "$suite" 2>/dev/null; then
    for child in $(pgrep -P "$suite"); do kill -INT "$child" 2>/dev/null; done
    kill -INT "$suite" 2>/dev/null
    for _ in $(seq 120); do kill -0 "$suite" 2>/dev/null || break; sleep 1; done
  fi
  if [[ -z "${REAL_KEEP_CLUSTER:-}${REAL_KUBECONFIG:-}" ]]; then
    SOFTFACTORY_REAL_LOGS=$repo/.cache/real/logs "$here/cluster-down.sh" "$cluster" 2>&1 | grep -v '^No cluster' >&2 || true
  fi
  exit "$rc"
}
trap teardown EXIT
trap 'exit 130' INT TERM
start=$SECONDS
cd "$repo"
# The test binary is built here, on the host, where the Go module proxy can be reached.
# In the background and waited for, so that a TERM to this script is handled at once.
go test -tags real ./test/real -v -count=1 -timeout 30m -ginkgo.v "$@" &
suite=$!
wait "$suite"
echo "test-real: suite finished in $((SECONDS - start))s" >&2
