# shellcheck shell=bash
# The local kwok cluster, shared by hack/cluster-up.sh (tests, demo) and
# hack/bench/cluster-up.sh (the benchmark): kwokctl's "binary" runtime with the control
# plane hack/install-controlplane.sh builds, made once and reused while it answers and
# its kwokctl configs are unchanged. Everything lives under KWOK_WORKDIR (default:
# .cache/kwok in this checkout); nothing is added to ~/.kube/config or ~/.kwok.
#
# kwok_cluster_up REPO NAME NODES NODE_TIMEOUT CONFIG...
#   makes (or reuses) cluster NAME from the kwokctl CONFIG files, scales it to NODES fake
#   nodes (Ready within NODE_TIMEOUT), prints the kubeconfig path on stdout and the rest
#   on stderr. hack/cluster-down.sh NAME removes it.

kwok_cluster_up() {
  local repo=$1 name=$2 nodes=$3 node_timeout=$4
  shift 4
  local configs=("$@")
  export KWOK_WORKDIR=${KWOK_WORKDIR:-$repo/.cache/kwok}
  local bin
  bin=$("$repo/hack/install-controlplane.sh" cluster)
  # kwokctl would download kubectl for its own use otherwise.
  export KWOK_KUBECTL_BINARY=$bin/kubectl

  local cluster_dir=$KWOK_WORKDIR/clusters/$name
  local kubeconfig=$cluster_dir/kubeconfig.yaml
  local log=$KWOK_WORKDIR/$name-kwokctl.log
  mkdir -p "$KWOK_WORKDIR"

  _kwokctl() { "$bin/kwokctl" "$@" --name "$name" >>"$log" 2>&1; }
  _kubectl() { "$bin/kubectl" --kubeconfig "$kubeconfig" "$@"; }
  _ready() { [[ -f "$kubeconfig" ]] && _kubectl get --raw /readyz >/dev/null 2>&1; }
  _fail() {
    echo "cluster-up: $*; kwokctl's log follows ($log)" >&2
    tail -n 40 "$log" >&2 || true
    exit 1
  }

  # A cluster made from other Stages or options would behave differently from what the
  # repository says, so the configs' checksum decides whether an existing one is reused.
  local checksum
  checksum=$(cat "${configs[@]}" | sha256sum | cut -d' ' -f1)
  if [[ -d "$cluster_dir" && "$(cat "$cluster_dir/softfactory-config.sha256" 2>/dev/null)" != "$checksum" ]]; then
    echo "Recreating cluster $name: its kwokctl configs changed since it was made." >&2
    "$repo/hack/cluster-down.sh" "$name" >&2
  fi
  if [[ -d "$cluster_dir" ]] && ! _ready; then
    # Made earlier but no longer running (a reboot, a killed process). Its state is
    # disposable, and a fresh cluster comes up in seconds where `kwokctl start` on a
    # half-dead one can hang for minutes.
    echo "Cluster $name exists but does not answer; recreating it." >&2
    "$repo/hack/cluster-down.sh" "$name" >&2
  fi

  if [[ ! -d "$cluster_dir" ]]; then
    echo "Creating cluster $name (kwokctl, binary runtime, ${configs[0]##*/}) in $KWOK_WORKDIR..." >&2
    local config_flags=() c
    for c in "${configs[@]}"; do config_flags+=(--config "$c"); done
    # --kubeconfig '' keeps kwokctl out of ~/.kube/config; the cluster's own kubeconfig
    # is written in its directory either way.
    _kwokctl create cluster "${config_flags[@]}" \
      --kubeconfig '' \
      --etcd-binary "$bin/etcd" \
      --kube-apiserver-binary "$bin/kube-apiserver" \
      --kube-controller-manager-binary "$bin/kube-controller-manager" \
      --kube-scheduler-binary "$bin/kube-scheduler" \
      --kwok-controller-binary "$bin/kwok" \
      --wait 2m || _fail "kwokctl create cluster failed"
    echo "$checksum" >"$cluster_dir/softfactory-config.sha256"
  fi
  _ready || _fail "cluster $name is not ready"

  # Fake nodes for the scheduler to place pods on; kwok keeps them Ready. Idempotent.
  _kwokctl scale node --replicas "$nodes" || _fail "kwokctl scale node failed"
  _kubectl wait --for=condition=Ready node --all --timeout="$node_timeout" >/dev/null || _fail "the nodes did not become Ready"
  # Pods need their namespace's default ServiceAccount, which the controller-manager makes.
  _kubectl wait --for=create serviceaccount/default -n default --timeout=60s >/dev/null ||
    _fail "the default ServiceAccount was not created"

  echo "Cluster $name is up with $nodes nodes: $(_kubectl config view -o jsonpath='{.clusters[0].cluster.server}')" >&2
  echo "$kubeconfig"
}
