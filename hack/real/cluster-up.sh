#!/usr/bin/env bash
# Starts a real single-node Kubernetes cluster inside a network namespace of its own and
# prints the path of a kubeconfig that reaches its API server from this host's loopback.
#
# Real containers: etcd, kube-apiserver, kube-controller-manager, kube-scheduler,
# kubelet and kube-proxy (built by hack/install-controlplane.sh real), containerd + runc
# + the CNI bridge plugin from Debian's packages, images from hack/real/images.sh.
#
# The network rule: everything that has a pod or Service address lives in the network
# namespace sfreal-NAME, which has no interface to the outside and no default route. A
# packet from this host's own namespace to a 10.x address would leave the machine, so
# nothing here ever sends one: the only way in from the host is the API server, through
# a unix-socket relay that listens on 127.0.0.1 alone. Programs that talk to pods run in
# the namespace: `nsenter --net=/run/netns/sfreal-NAME PROGRAM`.
#
# Usage: hack/real/cluster-up.sh [NAME]     (root; NAME defaults to softfactory-real)
# hack/real/cluster-down.sh NAME removes every process, mount, cgroup, rule and file.
# On any failure this script removes what it started before exiting.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
name=${1:-softfactory-real}
# shellcheck source=hack/real/lib.sh
source "$here/lib.sh"

if [[ -f "$state/kubeconfig" ]] && "$bin_dir/kubectl" --kubeconfig "$state/kubeconfig" get --raw /readyz >/dev/null 2>&1; then
  echo "$state/kubeconfig"
  exit 0
fi
if [[ -e "$state" || -e "$run" || -e "/run/netns/$netns" ]]; then
  echo "Removing what an earlier run of cluster $name left behind..." >&2
  "$here/cluster-down.sh" "$name" >&2
fi

for tool in containerd runc ctr socat conntrack iptables nsenter openssl /usr/lib/cni/bridge; do
  command -v "$tool" >/dev/null || { echo "cluster-up: $tool is missing: run hack/real/install-deps.sh" >&2; exit 1; }
done

# Whatever stops this script before the end (a failure, Ctrl-C, a kill) removes what it
# had started.
up=0
cleanup() {
  if [[ $up != 1 ]]; then
    echo "cluster-up: stopped before the cluster was up; removing what was started" >&2
    "$here/cluster-down.sh" "$name" >&2 || true
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
t0=$SECONDS
mkdir -p "$state" "$run/pids" "$state/pki" "$state/logs"
# The shim sockets containerd 1.6 leaves in /run/containerd/s are not named after its
# address: note the ones that exist now, so cluster-down removes only ours.
mkdir -p /run/containerd/s
ls /run/containerd/s >"$state/shim-sockets-before"
# Likewise containerd pins each pod's network namespace at /run/netns/cni-<uuid>. And
# `ip netns` makes /run/netns a mount the first time: note whether it already was.
findmnt -rn /run/netns >/dev/null || touch "$base_dir/.netns-mount-made"
mkdir -p /run/netns
ls /run/netns >"$state/netns-before"
# And libcni caches each attachment (ours and containerd's own loopback) in /var/lib/cni.
ls /var/lib/cni/results 2>/dev/null >"$state/cni-results-before" || true

log() { echo "[$((SECONDS - t0))s] $*" >&2; }

# --- certificates: one CA; the API server's serving cert; one admin client cert that
# every component uses (a throwaway single-node test cluster); the service-account keys.
log "Making certificates..."
pki=$state/pki
(
  cd "$pki"
  openssl ecparam -name prime256v1 -genkey -noout -out ca.key 2>/dev/null
  openssl req -x509 -new -key ca.key -subj /CN=softfactory-real-ca -days 2 -out ca.crt 2>/dev/null
  openssl ecparam -name prime256v1 -genkey -noout -out apiserver.key 2>/dev/null
  openssl req -new -key apiserver.key -subj /CN=kube-apiserver -out apiserver.csr 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1,IP:%s,IP:%s,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc\nextendedKeyUsage=serverAuth\n' \
    "$node_ip" "$apiserver_service_ip" >apiserver.ext
  openssl x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 -extfile apiserver.ext -out apiserver.crt 2>/dev/null
  openssl ecparam -name prime256v1 -genkey -noout -out admin.key 2>/dev/null
  openssl req -new -key admin.key -subj "/O=system:masters/CN=softfactory-real-admin" -out admin.csr 2>/dev/null
  printf 'extendedKeyUsage=clientAuth\n' >admin.ext
  openssl x509 -req -in admin.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 -extfile admin.ext -out admin.crt 2>/dev/null
  openssl genrsa -out sa.key 2048 2>/dev/null
  openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
)
# write_kubeconfig FILE SERVER
write_kubeconfig() {
  cat >"$1" <<KUBECONFIG
apiVersion: v1
kind: Config
clusters:
- name: $name
  cluster: {server: "$2", certificate-authority: $pki/ca.crt}
users:
- name: admin
  user: {client-certificate: $pki/admin.crt, client-key: $pki/admin.key}
contexts:
- name: $name
  context: {cluster: $name, user: admin, namespace: default}
current-context: $name
KUBECONFIG
}
# Components inside the namespace reach the API server on its loopback.
write_kubeconfig "$state/kubeconfig-inside" https://127.0.0.1:6443

# --- the network namespace: loopback, the node's address, and a route for Services.
log "Creating network namespace $netns..."
ip netns add "$netns"
inside ip link set lo up
# No dummy interfaces in this kernel: the node's address is a /32 on lo.
inside ip addr add "$node_ip/32" dev lo
# Service traffic from the namespace itself (the load generator) needs a route to
# exist before kube-proxy's DNAT rewrites it to a pod address.
inside ip route add "$service_cidr" dev lo
inside sysctl -qw net.ipv4.ip_forward=1
# Pod -> Service -> pod on the same bridge: the reply must go back through the DNAT.
inside sysctl -qw net.bridge.bridge-nf-call-iptables=1 2>/dev/null || true
if inside ip route show default | grep -q .; then
  echo "cluster-up: namespace $netns has a default route; refusing to go on" >&2
  false
fi

# --- cgroups: kubelet puts every pod under this root, in every v1 hierarchy, so
# teardown can find (and kill) whatever is left by looking there.
for hierarchy in /sys/fs/cgroup/*/; do
  [[ -e "$hierarchy/cgroup.procs" ]] || continue
  mkdir -p "$hierarchy$cgroup_root"
done
cpuset=/sys/fs/cgroup/cpuset
if [[ -d "$cpuset$cgroup_root" ]]; then
  cat "$cpuset/cpuset.cpus" >"$cpuset$cgroup_root/cpuset.cpus"
  cat "$cpuset/cpuset.mems" >"$cpuset$cgroup_root/cpuset.mems"
fi
# The pods' share of the CPU against the host's own processes. On a node the pods own
# most of the CPU (system daemons get a reservation); here, by default, all the pods
# together weigh as much as any one host process (a compiler, the test's control
# plane), and a busy moment starved the app for seconds: a request timed out during a
# backup. Four processes' worth: pods first, the control plane still never starved.
if [[ -w "/sys/fs/cgroup/cpu$cgroup_root/cpu.shares" ]]; then
  echo 4096 >"/sys/fs/cgroup/cpu$cgroup_root/cpu.shares"
fi

# --- containerd, with the CRI settings this machine needs.
log "Starting containerd..."
mkdir -p "$state/cni/net.d" "$state/containerd"
cat >"$state/cni/net.d/10-sfreal.conflist" <<CNI
{
  "cniVersion": "1.0.0",
  "name": "$netns",
  "plugins": [
    {"type": "bridge", "bridge": "sfr0", "isGateway": true, "ipMasq": true, "hairpinMode": true,
     "ipam": {"type": "host-local", "dataDir": "$state/cni/ipam",
              "ranges": [[{"subnet": "$pod_cidr"}]], "routes": [{"dst": "0.0.0.0/0"}]}},
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
CNI
cat >"$state/containerd/config.toml" <<TOML
version = 2
root = "$state/containerd/root"
state = "$run/containerd"
[grpc]
  address = "$containerd_sock"
[ttrpc]
  address = "$containerd_sock.ttrpc"
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "$state/containerd/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "softfactory.local/pause:1"
  # No CAP_SYS_RESOURCE here: runc cannot lower oom_score_adj to kubelet's -998.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$state/cni/net.d"
TOML
# nsenter, not `ip netns exec`: that remounts /sys and hides the cgroup hierarchies.
start_inside containerd containerd --config "$state/containerd/config.toml"
wait_for "containerd" 60 ctr_ version
ctr_ plugins ls | awk '$2 == "io.containerd.grpc.v1.cri" && $4 != "ok" { exit 1 }' ||
  { echo "cluster-up: containerd's CRI plugin did not load" >&2; tail -20 "$state/logs/containerd.log" >&2; false; }

log "Importing the images..."
ctr_ -n k8s.io images import "$images_archive" >"$state/logs/import.log" 2>&1 ||
  { tail -20 "$state/logs/import.log" >&2; false; }

# --- the control plane.
log "Starting etcd and kube-apiserver..."
start_inside etcd "$bin_dir/etcd" --name "$name" --data-dir "$state/etcd" \
  --listen-client-urls http://127.0.0.1:2379 --advertise-client-urls http://127.0.0.1:2379 \
  --listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380 \
  --initial-cluster "$name=http://127.0.0.1:2380" --unsafe-no-fsync --log-level warn
start_inside kube-apiserver "$bin_dir/kube-apiserver" \
  --etcd-servers http://127.0.0.1:2379 --bind-address 0.0.0.0 --secure-port 6443 \
  --advertise-address "$node_ip" --service-cluster-ip-range "$service_cidr" \
  --tls-cert-file "$pki/apiserver.crt" --tls-private-key-file "$pki/apiserver.key" \
  --client-ca-file "$pki/ca.crt" --authorization-mode Node,RBAC \
  --service-account-issuer https://kubernetes.default.svc \
  --service-account-key-file "$pki/sa.pub" --service-account-signing-key-file "$pki/sa.key" \
  --kubelet-client-certificate "$pki/admin.crt" --kubelet-client-key "$pki/admin.key" \
  --kubelet-preferred-address-types InternalIP --allow-privileged=false
wait_for "the API server" 120 inside_kubectl get --raw /readyz

log "Starting controller-manager, scheduler, kubelet and kube-proxy..."
start_inside kube-controller-manager "$bin_dir/kube-controller-manager" \
  --kubeconfig "$state/kubeconfig-inside" --leader-elect=false --bind-address 127.0.0.1 \
  --service-account-private-key-file "$pki/sa.key" --root-ca-file "$pki/ca.crt" \
  --use-service-account-credentials=false --allocate-node-cidrs=false
start_inside kube-scheduler "$bin_dir/kube-scheduler" \
  --kubeconfig "$state/kubeconfig-inside" --leader-elect=false --bind-address 127.0.0.1

mkdir -p "$state/kubelet" "$state/pod-logs"
: >"$state/resolv.conf"
cat >"$state/kubelet.yaml" <<YAML
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# cgroup v1 here (hybrid, the unified mount holds only hugetlb).
failCgroupV1: false
cgroupDriver: cgroupfs
cgroupRoot: $cgroup_root
containerRuntimeEndpoint: unix://$containerd_sock
address: $node_ip
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: false}
  x509: {clientCAFile: $pki/ca.crt}
authorization: {mode: AlwaysAllow}
failSwapOn: false
# No CoreDNS: pods find PostgreSQL through the injected *_SERVICE_HOST variables.
resolvConf: $state/resolv.conf
podLogsDir: $state/pod-logs
# Images cannot be pulled back: never garbage-collect them, never evict for disk.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: 100Mi, nodefs.available: 1%, imagefs.available: 1%, nodefs.inodesFree: 1%}
serializeImagePulls: false
maxPods: 50
YAML
start_inside kubelet "$bin_dir/kubelet" --config "$state/kubelet.yaml" \
  --kubeconfig "$state/kubeconfig-inside" --root-dir "$state/kubelet" \
  --cert-dir "$state/kubelet/pki" --hostname-override "$node_name" --node-ip "$node_ip" --v 1
cat >"$state/kube-proxy.yaml" <<YAML
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: iptables
clientConnection: {kubeconfig: $state/kubeconfig-inside}
hostnameOverride: $node_name
clusterCIDR: $pod_cidr
bindAddress: 127.0.0.1
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
# The conntrack table is the host's: leave its sizes and timeouts alone.
conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
iptables: {minSyncPeriod: 0s, syncPeriod: 30s}
YAML
start_inside kube-proxy "$bin_dir/kube-proxy" --config "$state/kube-proxy.yaml"

# --- the way in from the host: 127.0.0.1:PORT -> unix socket -> 127.0.0.1:6443 inside.
start_inside api-relay-inside socat "UNIX-LISTEN:$run/apiserver.sock,fork,unlink-early,mode=600" TCP:127.0.0.1:6443
port=$(free_loopback_port)
start_host api-relay-host socat "TCP-LISTEN:$port,bind=127.0.0.1,fork,reuseaddr" "UNIX-CONNECT:$run/apiserver.sock"
write_kubeconfig "$state/kubeconfig" "https://127.0.0.1:$port"

log "Waiting for node $node_name to be Ready..."
wait_for "the relay to the API server" 30 "$bin_dir/kubectl" --kubeconfig "$state/kubeconfig" get --raw /readyz
wait_for "node $node_name" 120 sh -c "'$bin_dir/kubectl' --kubeconfig '$state/kubeconfig' get node '$node_name' -o jsonpath='{.status.conditions[?(@.type==\"Ready\")].status}' | grep -qx True"
wait_for "the default service account" 60 "$bin_dir/kubectl" --kubeconfig "$state/kubeconfig" get serviceaccount default
up=1
log "Cluster $name is up (kubeconfig $state/kubeconfig; pods via nsenter --net=/run/netns/$netns)."
echo "$state/kubeconfig"
