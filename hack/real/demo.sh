#!/usr/bin/env bash
# The real-cluster demo: a real single-node cluster (hack/real/cluster-up.sh), the
# operator on this host, PostgreSQL and the sample app (examples/softfactory-app), then
# two releases in a row while a load generator inside the cluster's network namespace
# sends requests to the app's Service; its numbers are printed at the end.
#
#   hack/real/demo.sh up     run it; the cluster is removed at the end (and on Ctrl-C)
#                            unless REAL_DEMO_KEEP=1, which leaves it up for a look
#   hack/real/demo.sh down   remove a kept demo: the operator and the cluster
#
# Root. `make demo` is the fast kwok one; this one shows real containers.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
cluster=softfactory-real-demo
work=$repo/.cache/real-demo
ns=demo
netns=/run/netns/sfreal-$cluster
mkdir -p "$work/bin"

down() {
  if [[ -f "$work/operator.pid" ]]; then
    pid=$(cat "$work/operator.pid")
    if tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q "^$work/bin/manager "; then
      kill "$pid" 2>/dev/null || true
    fi
    rm -f "$work/operator.pid"
  fi
  if [[ -f "$work/loadgen.pid" ]]; then
    pid=$(cat "$work/loadgen.pid")
    if tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q "^$work/bin/loadgen "; then
      kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$work/loadgen.pid"
  fi
  "$here/cluster-down.sh" "$cluster"
}
if [[ "${1:-up}" == down ]]; then
  down
  exit 0
fi

t0=$SECONDS
# interruptible CMD...: runs CMD so that a TERM to this script is handled at once (bash
# runs traps only between foreground commands, and a kubectl wait can last minutes).
interruptible() {
  "$@" &
  wait $!
}
say() { printf '\n[%3ds] %s\n' "$((SECONDS - t0))" "$*"; }
finish() {
  local rc=$?
  if [[ -n "${REAL_DEMO_KEEP:-}" && $rc == 0 ]]; then
    echo
    echo "The demo cluster stays up: KUBECONFIG=$kubeconfig kubectl -n $ns get sfrelease"
    echo "Requests to the app from inside its network namespace:"
    echo "  nsenter --net=$netns $work/bin/loadgen -once -url ${url:-http://<ClusterIP>/}"
    echo "Remove it with: make demo-real-down"
  else
    say "Removing the demo cluster..."
    down
  fi
  exit "$rc"
}
trap finish EXIT
trap 'exit 130' INT TERM

say "Building the operator and the load generator..."
(cd "$repo" && go build -o "$work/bin/manager" ./cmd && go build -o "$work/bin/loadgen" ./hack/real/loadgen)
bin_dir=$("$repo/hack/install-controlplane.sh" real)
k() { "$bin_dir/kubectl" --kubeconfig "$kubeconfig" "$@"; }

say "Starting the real cluster (kubelet, containerd, kube-proxy in netns sfreal-$cluster)..."
"$here/cluster-up.sh" "$cluster" >"$work/kubeconfig-path" &
wait $!
kubeconfig=$(cat "$work/kubeconfig-path")
state=$(dirname "$kubeconfig")
k apply -f "$repo/config/crd/bases" >/dev/null
# The operator exits at start when its CRD is not served yet.
k wait --for=condition=Established --timeout=60s crd/softfactoryreleases.deploy.softfactory.io >/dev/null

say "Starting the operator on this host (log: $work/operator.log)..."
KUBECONFIG=$kubeconfig "$work/bin/manager" --leader-elect=false --metrics-bind-address=0 \
  --health-probe-bind-address=127.0.0.1:0 >"$work/operator.log" 2>&1 </dev/null &
echo $! >"$work/operator.pid"
sleep 2
kill -0 "$(cat "$work/operator.pid")" 2>/dev/null || { echo "The operator exited at start:" >&2; tail -5 "$work/operator.log" >&2; exit 1; }

say "Starting PostgreSQL; the backup directory is handed to the backup user (uid 70)..."
k create namespace "$ns" >/dev/null
export NAMESPACE=$ns BACKUP_DIR=$state/backups/$ns POSTGRES_PASSWORD=demo-$RANDOM$RANDOM
mkdir -p "$BACKUP_DIR"
chown 70:70 "$BACKUP_DIR"
render() { sed -e "s|\${NAMESPACE}|$NAMESPACE|g" -e "s|\${BACKUP_DIR}|$BACKUP_DIR|g" \
  -e "s|\${POSTGRES_PASSWORD}|$POSTGRES_PASSWORD|g" -e "s|\${IMAGE}|${IMAGE:-}|g" "$1"; }
render "$repo/examples/softfactory-app/deploy/postgres.yaml" | k apply -f - >/dev/null
db_ip=$(k -n "$ns" get service postgres -o jsonpath='{.spec.clusterIP}')
# No cluster DNS: the app reaches PostgreSQL at its Service's ClusterIP.
k -n "$ns" create secret generic softfactory-db \
  --from-literal=DATABASE_URL="postgresql://softfactory:$POSTGRES_PASSWORD@$db_ip:5432/softfactory" >/dev/null
interruptible k -n "$ns" rollout status deployment/postgres --timeout=5m >/dev/null

# release IMAGE [ENV_NOTE]: apply the release and wait until it succeeded.
release() {
  IMAGE=$1 render "$repo/examples/softfactory-app/deploy/release.yaml" >"$work/release.yaml"
  if [[ -n "${2:-}" ]]; then
    printf '  env:\n  - {name: RELEASE_NOTE, value: "%s"}\n' "$2" >>"$work/release.yaml"
  fi
  k apply -f "$work/release.yaml" >/dev/null
  local gen
  gen=$(k -n "$ns" get sfrelease softfactory -o jsonpath='{.metadata.generation}')
  interruptible k -n "$ns" wait sfrelease/softfactory --timeout=10m \
    --for=jsonpath='{.status.observedGeneration}'="$gen" >/dev/null
  interruptible k -n "$ns" wait sfrelease/softfactory --timeout=10m --for=jsonpath='{.status.phase}'=Succeeded >/dev/null
  k -n "$ns" get sfrelease softfactory
}

say "Release 1: softfactory-app:1.0.0 (backup, migration 0001, blue)..."
release softfactory.local/softfactory-app:1.0.0
url="http://$(k -n "$ns" get service softfactory-api -o jsonpath='{.spec.clusterIP}'):80/"

# The active Service was just made: wait until kube-proxy routes it (a request sent
# before that is lost, which would count against the release).
for _ in $(seq 60); do
  nsenter --net="$netns" "$work/bin/loadgen" -once -timeout 2s -url "$url" >/dev/null 2>&1 && break
  sleep 1
done
say "Load: 20 requests/s to $url from inside the namespace (stops by itself after 10 minutes)..."
nsenter --net="$netns" "$work/bin/loadgen" -url "$url" -rate 20 -duration 10m -timeout 10s -out "$work/load.json" \
  2>"$work/loadgen.log" </dev/null &
echo $! >"$work/loadgen.pid"
sleep 3

say "Release 2: softfactory-app:2.0.0 (backup, migration 0002 adds items.status, green)..."
release softfactory.local/softfactory-app:2.0.0
say "Release 3: the same image with a new setting (a config-only release: backup, no-op migration, blue)..."
release softfactory.local/softfactory-app:2.0.0 "demo"
sleep 3
kill -INT "$(cat "$work/loadgen.pid")"
while kill -0 "$(cat "$work/loadgen.pid")" 2>/dev/null; do sleep 0.2; done
rm -f "$work/loadgen.pid"

say "What the releases left:"
k -n "$ns" get sfrelease,deployments,jobs
echo
echo "Schema (alembic_version, items columns):"
k -n "$ns" exec deploy/postgres -- psql -h /tmp -U softfactory -d softfactory -tAc \
  "SELECT 'alembic_version: ' || version_num FROM alembic_version UNION ALL SELECT 'items.' || column_name FROM information_schema.columns WHERE table_name = 'items'"
echo
echo "Dumps on the backup volume ($BACKUP_DIR):"
ls -l "$BACKUP_DIR"
echo
echo "Load generator (one new connection per request, to the active Service's ClusterIP):"
python3 - "$work/load.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print(f"  {r['requests']} requests in {r['seconds']:.0f}s, {r['failures']} failed, "
      f"p50 {r['p50Millis']:.1f} ms, p99 {r['p99Millis']:.1f} ms, max {r['maxMillis']:.1f} ms")
print("  answered by version:", ", ".join(f"{v}: {n}" for v, n in sorted(r["versions"].items())))
for c in r.get("versionChanges", []):
    print(f"  {c['at']}: traffic now answered by {c['version']}")
for f in r.get("firstFailures", []):
    print(f"  FAILED {f['at']}: {f['error']}")
PY
say "Done."
