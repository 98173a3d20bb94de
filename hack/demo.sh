#!/usr/bin/env bash
# The local demo behind `make demo` and `make demo-down` (docs/local-cluster.md).
#
#   hack/demo.sh up     start a fresh local cluster, install the CRD, run the operator in
#                       the background, apply the sample release, then a second image,
#                       and show each release progressing the way `kubectl get sfrelease
#                       -w` would. The cluster and the operator stay up afterwards, so the
#                       commands it prints at the end can be tried; nothing else keeps
#                       running.
#   hack/demo.sh down   stop the operator and remove the cluster.
#
# Needs only Go: the control plane is built by hack/install-controlplane.sh (cached; the
# first build takes about ten minutes). Everything listens on 127.0.0.1.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
cluster=softfactory
state=$repo/.cache/demo
export KWOK_WORKDIR=${KWOK_WORKDIR:-$repo/.cache/kwok}
pidfile=$state/operator.pid
oplog=$state/operator.log
sample=config/samples/deploy_v1alpha1_softfactoryrelease.yaml
ns=production
release=softfactory
second_image=${DEMO_IMAGE:-registry.example.com/softfactory:1.5.0}
health_port=${DEMO_HEALTH_PORT:-18081}
metrics_port=${DEMO_METRICS_PORT:-18080}

if [[ -t 1 ]]; then bold=$'\033[1m' dim=$'\033[2m' off=$'\033[0m'; else bold='' dim='' off=''; fi
say() { printf '\n%s== %s%s\n' "$bold" "$*" "$off"; }
show() { printf '%s$ %s%s\n' "$dim" "$*" "$off"; }

# stop_operator stops the operator an earlier `hack/demo.sh up` started, and only that
# process: the pid file must name a live bin/manager of this checkout.
stop_operator() {
  [[ -f "$pidfile" ]] || return 0
  local pid
  pid=$(cat "$pidfile")
  if [[ -r /proc/$pid/cmdline ]] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q "^$repo/bin/manager "; then
    echo "Stopping the demo operator (pid $pid)." >&2
    kill "$pid" 2>/dev/null || true
    # It exits within a second or two on SIGTERM; tail --pid waits without polling.
    timeout 15 tail --pid="$pid" -f /dev/null || kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$pidfile"
}

# operator_ready asks the operator's health endpoint, with bash's own /dev/tcp: a fresh
# machine may have no curl.
operator_ready() {
  local reply
  # In a subshell, so the descriptor and the silenced "connection refused" stay there.
  reply=$(
    exec 2>/dev/null
    exec 3<>"/dev/tcp/127.0.0.1/$health_port" || exit 1
    printf 'GET /readyz HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3
    head -n 1 <&3
  ) || return 1
  [[ "$reply" == *" 200 "* ]]
}

# follow prints one line each time the release's status changes, until the operator has
# observed the current spec and the release has settled (succeeded or failed). It reads
# the same watch `kubectl get sfrelease -w` does.
follow() {
  local fields='{.metadata.generation}|{.status.observedGeneration}|{.status.phase}|{.status.activeColor}|{.status.activeImage}'
  local c
  for c in Ready BackupSucceeded MigrationSucceeded GreenAvailable Degraded; do
    fields+="|{.status.conditions[?(@.type==\"$c\")].message}"
  done
  printf '%s%-8s  %-10s  %-6s  %-40s  %s%s\n' "$bold" TIME PHASE ACTIVE "SERVING IMAGE" DETAIL "$off"
  local gen observed phase active image ready backup migration green degraded detail row prev='' result=2
  while IFS='|' read -r gen observed phase active image ready backup migration green degraded; do
    # The detail is the condition of the step in flight.
    case "$phase" in
      BackingUp) detail=$backup ;;
      Migrating) detail=$migration ;;
      Deploying | Verifying) detail=$green ;;
      Failed | RolledBack) detail=$degraded ;;
      *) detail=$ready ;;
    esac
    if [[ "$gen" != "$observed" ]]; then
      detail="the operator has not seen this spec yet"
    fi
    row=$(printf '%-10s  %-6s  %-40s  %s' "${phase:-Pending}" "${active:--}" "${image:--}" "${detail:0:110}")
    if [[ "$row" != "$prev" ]]; then
      printf '%s  %s\n' "$(date +%H:%M:%S)" "$row"
      prev=$row
    fi
    if [[ "$gen" == "$observed" ]]; then
      case "$phase" in
        Succeeded) result=0 && break ;;
        Failed | RolledBack) result=1 && break ;;
      esac
    fi
  done < <(timeout 600 "$kubectl" get sfrelease "$release" -n "$ns" --watch -o jsonpath="$fields{\"\\n\"}")
  # The watch would run on until its timeout: stop it (bash gives $! to the process
  # substitution).
  kill "$!" 2>/dev/null || true
  case $result in
    0) return 0 ;;
    1) echo "The release failed; see above, and the operator's log: $oplog" >&2 && return 1 ;;
    *) echo "The release did not settle within 10 minutes; the operator's log: $oplog" >&2 && return 1 ;;
  esac
}

up() {
  mkdir -p "$state"
  say "Building the control plane binaries (cached; the first time takes about ten minutes)"
  bin=$(hack/install-controlplane.sh cluster)
  kubectl=$bin/kubectl

  # A demo always starts from scratch: an earlier one's release would be mid-history.
  stop_operator
  if [[ -d "$KWOK_WORKDIR/clusters/$cluster" ]]; then
    hack/cluster-down.sh "$cluster"
  fi

  say "Starting the local cluster (kwok: real API server, controller-manager and scheduler; fake kubelets)"
  kubeconfig=$(hack/cluster-up.sh "$cluster")
  export KUBECONFIG=$kubeconfig

  say "Building the operator and the kubectl plugin"
  show "go build -o bin/manager ./cmd && go build -o bin/kubectl-sfrelease ./cmd/kubectl-sfrelease"
  go build -o bin/manager ./cmd
  go build -o bin/kubectl-sfrelease ./cmd/kubectl-sfrelease

  say "Installing the CRD"
  show "kubectl apply --server-side -f config/crd/bases"
  "$kubectl" apply --server-side -f config/crd/bases >/dev/null
  # kubectl wait gives up, rather than waits, on a CRD whose status has no conditions
  # yet (right after the apply), hence the retries.
  local tries=0
  until "$kubectl" wait --for=condition=Established crd/softfactoryreleases.deploy.softfactory.io --timeout=60s >/dev/null 2>&1; do
    ((++tries < 50)) || { echo "The CRD did not become Established." >&2 && exit 1; }
    sleep 0.2
  done

  say "Starting the operator in the background (log: ${oplog#"$repo"/})"
  # setsid: the operator outlives this script (and a Ctrl-C of it) until `make demo-down`.
  setsid "$repo/bin/manager" --leader-elect=false \
    --health-probe-bind-address="127.0.0.1:$health_port" \
    --metrics-bind-address="127.0.0.1:$metrics_port" --metrics-secure=false \
    >"$oplog" 2>&1 </dev/null &
  echo $! >"$pidfile"
  local waited=0
  until operator_ready; do
    if ! kill -0 "$(cat "$pidfile")" 2>/dev/null || ((waited >= 120)); then
      echo "The operator did not start; its log follows." >&2
      tail -n 30 "$oplog" >&2
      exit 1
    fi
    sleep 0.5
    waited=$((waited + 1))
  done

  say "Namespace $ns: the Secrets and the backup volume the sample refers to"
  show "kubectl apply -f config/kwok/demo-prerequisites.yaml"
  "$kubectl" apply -f config/kwok/demo-prerequisites.yaml >/dev/null

  say "Release 1: the sample, image $(sed -n 's/^  image: //p' "$sample")"
  show "kubectl apply -f $sample"
  "$kubectl" apply -f "$sample" >/dev/null
  follow

  say "Release 2: a new image, $second_image (backup, migration, green, flip, then blue waits scaleDownDelaySeconds: 30 and scales to 0)"
  show "kubectl patch sfrelease $release -n $ns --type merge -p '{\"spec\":{\"image\":\"$second_image\"}}'"
  "$kubectl" patch sfrelease "$release" -n "$ns" --type merge -p "{\"spec\":{\"image\":\"$second_image\"}}" >/dev/null
  follow

  say "Where things stand"
  show "kubectl get sfrelease,deployments,jobs,services -n $ns"
  "$kubectl" get sfrelease -n "$ns" -o wide
  echo
  "$kubectl" get deployments,jobs,services -n "$ns"

  say "What the operator did: its Events on the release, the actions only"
  show "kubectl events -n $ns --for softfactoryrelease/$release"
  # The Events of condition changes are left out here; they retell the lines above.
  "$kubectl" events -n "$ns" --for "softfactoryrelease/$release" |
    grep -E ' (REASON|JobCreated|Deploying|ScaledDown) |Service .* (switched|now selects)' | cut -c1-180

  say "Try next"
  cat <<EOF
The cluster and the operator keep running until you run: make demo-down

  export KUBECONFIG=$kubeconfig
  # kubectl v1.37 (built with the cluster) and the kubectl-sfrelease plugin:
  export PATH=$bin:$repo/bin:\$PATH

  # Watch the release (Ctrl-C stops watching), list its releases, follow one to the end:
  kubectl get sfrelease -n $ns -w
  kubectl sfrelease history $release -n $ns
  kubectl sfrelease status $release -n $ns

  # Manual promotion: the next release waits in AwaitingPromotion until you promote it
  # (status follows it there and says so; Ctrl-C, or --timeout, stops following).
  kubectl patch sfrelease $release -n $ns --type merge \\
    -p '{"spec":{"image":"registry.example.com/softfactory:1.6.0","strategy":{"blueGreen":{"autoPromote":false}}}}'
  kubectl sfrelease status $release -n $ns --timeout 30s
  kubectl sfrelease promote $release -n $ns

  # A failing migration (the kwok Stage softfactory-job-fail): no flip, the serving
  # colour untouched, Degraded says why.
  kubectl patch sfrelease $release -n $ns --type merge \\
    -p '{"spec":{"image":"registry.example.com/softfactory:1.7.0","migration":{"env":[{"name":"KWOK_OUTCOME","value":"fail"}]}}}'

  # A green that never becomes ready (softfactory-pod-never-ready): aborted after
  # progressDeadlineSeconds, traffic never moves.
  kubectl patch sfrelease $release -n $ns --type merge \\
    -p '{"spec":{"image":"registry.example.com/softfactory:1.8.0","migration":{"env":null},"podTemplate":{"labels":{"kwok.softfactory.io/outcome":"never-ready"}},"strategy":{"blueGreen":{"progressDeadlineSeconds":20}}}}'

  # The operator's log and metrics:
  tail -f ${oplog#"$repo"/}
  curl -s http://127.0.0.1:$metrics_port/metrics | grep softfactory

docs/local-cluster.md explains the cluster and the kwok Stages that make pods fail.
EOF
}

down() {
  stop_operator
  hack/cluster-down.sh "$cluster"
  rm -rf "$state"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  *)
    echo "usage: $0 up|down" >&2
    exit 2
    ;;
esac
