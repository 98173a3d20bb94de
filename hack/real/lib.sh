# shellcheck shell=bash
# Shared by hack/real/cluster-up.sh and cluster-down.sh: names, addresses, and helpers
# to start and stop the cluster's processes. Expects $here, $repo and $name set.

# Where things live. State (etcd, containerd's images, kubelet's pods) is on disk;
# sockets and pid files are under /run.
base_dir=${SOFTFACTORY_REAL_DIR:-/var/lib/softfactory-real}
state=$base_dir/$name
run=/run/softfactory-real/$name
netns=sfreal-$name
cgroup_root=/sfreal-$name
containerd_sock=$run/containerd.sock
node_name=$name-node
# All of these exist only inside the network namespace.
node_ip=10.213.0.1
pod_cidr=10.213.1.0/24
service_cidr=10.213.128.0/24
apiserver_service_ip=10.213.128.1

bin_dir=${SOFTFACTORY_REAL_BIN_DIR:-$("$repo/hack/install-controlplane.sh" real)}
images_archive=${SOFTFACTORY_REAL_IMAGES:-}
if [[ -z "$images_archive" && "${BASH_SOURCE[1]##*/}" == cluster-up.sh ]]; then
  images_archive=$("$here/images.sh")
fi

# inside CMD...: runs CMD in the cluster's network namespace, with the host's mounts.
inside() { nsenter --net="/run/netns/$netns" "$@"; }
inside_kubectl() { inside "$bin_dir/kubectl" --kubeconfig "$state/kubeconfig-inside" "$@"; }
ctr_() { ctr --address "$containerd_sock" "$@"; }

# start_inside NAME CMD...: starts CMD in the namespace in the background, its output in
# $state/logs/NAME.log and its pid in $run/pids/NAME.pid (nsenter execs CMD: same pid).
start_inside() {
  local proc=$1
  shift
  nsenter --net="/run/netns/$netns" "$@" </dev/null >"$state/logs/$proc.log" 2>&1 &
  echo $! >"$run/pids/$proc.pid"
}
# start_host NAME CMD...: the same, in the host's own namespace (the loopback relay).
start_host() {
  local proc=$1
  shift
  "$@" </dev/null >"$state/logs/$proc.log" 2>&1 &
  echo $! >"$run/pids/$proc.pid"
}

# wait_for WHAT SECONDS CMD...: until CMD succeeds, or fail saying what never came.
wait_for() {
  local what=$1 deadline=$((SECONDS + $2))
  shift 2
  until "$@" >/dev/null 2>&1; do
    if ((SECONDS >= deadline)); then
      echo "cluster-up: $what did not come up in time; logs in $state/logs" >&2
      return 1
    fi
    sleep 0.5
  done
}

# free_loopback_port: a port on 127.0.0.1 that nothing listens on now.
free_loopback_port() {
  local port
  while :; do
    port=$((20000 + RANDOM % 20000))
    if ! ss -Htln "sport = :$port" | grep -q .; then
      echo "$port"
      return
    fi
  done
}
