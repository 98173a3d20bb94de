#!/usr/bin/env bash
# Removes a cluster made by hack/real/cluster-up.sh, whole: its pods' processes, the
# containerd shims, every component, every mount under its directories, its cgroups, its
# network namespace (and with it every iptables rule kube-proxy wrote, all of which
# lived in that namespace), the shim sockets it left in /run/containerd/s, and its
# files. Safe to run twice, and after a run that died half-way.
#
# Only processes this cluster started are touched: the pids it recorded, processes in
# its own cgroups, shims serving its own containerd socket, and processes inside its
# own network namespace.
#
# Usage: hack/real/cluster-down.sh [NAME]     (NAME defaults to softfactory-real)
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
name=${1:-softfactory-real}
SOFTFACTORY_REAL_BIN_DIR=${SOFTFACTORY_REAL_BIN_DIR:-/nonexistent} SOFTFACTORY_REAL_IMAGES=none
# shellcheck source=hack/real/lib.sh
source "$here/lib.sh"
t0=$SECONDS

# pid_of NAME: the recorded pid of a component, if that process still exists.
pid_of() {
  local pid
  pid=$(cat "$run/pids/$1.pid" 2>/dev/null) || return 1
  [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null && echo "$pid"
}
# stop NAME SIGNAL WAIT_SECONDS: signal a component, wait, then SIGKILL it.
stop() {
  local pid i
  pid=$(pid_of "$1") || return 0
  kill "-$2" "$pid" 2>/dev/null
  for ((i = 0; i < $3 * 10; i++)); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null
  sleep 0.2
}
# cgroup_pids: every process in this cluster's cgroups (the pods' processes).
cgroup_pids() {
  find /sys/fs/cgroup/*"$cgroup_root" -name cgroup.procs -exec cat {} + 2>/dev/null | sort -u
}
# shim_pids: containerd shims serving this cluster's containerd (found by its socket).
shim_pids() {
  local pid
  for pid in $(pgrep -x containerd-shim-runc-v2 2>/dev/null; pgrep -f '^containerd-shim' 2>/dev/null); do
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "-address $containerd_sock " && echo "$pid"
  done | sort -u
}

# 1. kubelet first, so nothing restarts the pods being stopped.
stop kubelet KILL 5
# 2. The pods: through containerd while it runs (clean unmounts), then by cgroup.
if pid_of containerd >/dev/null; then
  for task in $(ctr_ -n k8s.io tasks ls -q 2>/dev/null); do
    ctr_ -n k8s.io tasks kill -s SIGKILL "$task" >/dev/null 2>&1
  done
  sleep 1
  for task in $(ctr_ -n k8s.io tasks ls -q 2>/dev/null); do
    ctr_ -n k8s.io tasks delete -f "$task" >/dev/null 2>&1
  done
fi
for attempt in 1 2 3 4 5; do
  pids=$(cgroup_pids)
  [[ -z "$pids" ]] && break
  # shellcheck disable=SC2086
  kill -KILL $pids 2>/dev/null
  sleep 0.5
done
# 3. The shims, then the components and relays.
for pid in $(shim_pids); do kill -KILL "$pid" 2>/dev/null; done
for proc in containerd kube-proxy kube-scheduler kube-controller-manager api-relay-host api-relay-inside kube-apiserver etcd; do
  stop "$proc" TERM 5
done
for pid in $(shim_pids); do kill -KILL "$pid" 2>/dev/null; done
# 4. Anything else still inside the namespace was started for it (a load generator).
if [[ -e "/run/netns/$netns" ]]; then
  for pid in $(ip netns pids "$netns" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null; done
fi
sleep 0.3
# 5. Mounts: kubelet's volumes (tmpfs), containers' root filesystems (overlay) and
# sandboxes' /dev/shm, deepest first.
for dir in "$state" "$run"; do
  findmnt -rn -o TARGET | awk -v d="$dir/" 'index($0, d) == 1' | sort -r | while read -r target; do
    umount "$target" 2>/dev/null || umount -l "$target" 2>/dev/null
  done
done
# 6. The pods' network namespaces containerd pinned in /run/netns (new since cluster-up,
# nothing left in them), then the cluster's own, and with it the bridge, the veths and
# every iptables rule.
if [[ -f "$state/netns-before" ]]; then
  for pod_netns in /run/netns/cni-*; do
    [[ -e "$pod_netns" ]] || continue
    grep -qxF "${pod_netns##*/}" "$state/netns-before" && continue
    [[ -z "$(ip netns pids "${pod_netns##*/}" 2>/dev/null)" ]] || continue
    ip netns del "${pod_netns##*/}" 2>/dev/null || { umount "$pod_netns" 2>/dev/null; rm -f "$pod_netns"; }
  done
fi
if [[ -e "/run/netns/$netns" ]]; then
  ip netns del "$netns" 2>/dev/null || { umount "/run/netns/$netns" 2>/dev/null; rm -f "/run/netns/$netns"; }
fi
# 7. Cgroups, deepest first (an empty cgroup is removed with rmdir).
for hierarchy in /sys/fs/cgroup/*/; do
  [[ -d "$hierarchy${cgroup_root#/}" ]] || continue
  find "$hierarchy${cgroup_root#/}" -depth -type d -exec rmdir {} \; 2>/dev/null
done
# 8. Shim sockets this cluster's containerd left: new since cluster-up, and no process
# listens on them any more.
if [[ -f "$state/shim-sockets-before" && -d /run/containerd/s ]]; then
  listening=$(ss -Hxl 2>/dev/null | awk '{ print $5 }')
  for sock in /run/containerd/s/*; do
    [[ -e "$sock" ]] || continue
    grep -qxF "${sock##*/}" "$state/shim-sockets-before" && continue
    grep -qF "$sock" <<<"$listening" && continue
    rm -f "$sock"
  done
  # runc's state directories of the shims, empty once their containers are gone.
  rmdir /run/containerd/runc/k8s.io /run/containerd/runc /run/containerd/s /run/containerd 2>/dev/null
fi
# libcni's cache of this cluster's attachments: this network's, and containerd's
# loopback ones that appeared since cluster-up.
rm -f /var/lib/cni/results/"$netns"-* 2>/dev/null
if [[ -f "$state/cni-results-before" ]]; then
  for cached in /var/lib/cni/results/cni-loopback-*; do
    [[ -e "$cached" ]] || continue
    grep -qxF "${cached##*/}" "$state/cni-results-before" || rm -f "$cached"
  done
fi
rmdir /var/lib/cni/results /var/lib/cni 2>/dev/null
# 9. Files. A mount that is somehow still there stops here rather than be deleted through.
left=$(findmnt -rn -o TARGET | awk -v s="$state/" -v r="$run/" 'index($0, s) == 1 || index($0, r) == 1')
if [[ -n "$left" ]]; then
  echo "cluster-down: mounts still present, not deleting $state:" >&2
  echo "$left" >&2
  exit 1
fi
# SOFTFACTORY_REAL_LOGS keeps the components' and pods' logs for a look afterwards.
if [[ -n "${SOFTFACTORY_REAL_LOGS:-}" && -d "$state/logs" ]]; then
  mkdir -p "$SOFTFACTORY_REAL_LOGS"
  cp -r "$state/logs" "$SOFTFACTORY_REAL_LOGS/components" 2>/dev/null
  cp -r "$state/pod-logs" "$SOFTFACTORY_REAL_LOGS/pods" 2>/dev/null
fi
rm -rf "$state" "$run"
# The /run/netns mount `ip netns` made for the first cluster goes with the last one.
if [[ -e "$base_dir/.netns-mount-made" ]] && ! ls "$base_dir" | grep -q . && [[ -z "$(ls -A /run/netns 2>/dev/null)" ]]; then
  umount /run/netns 2>/dev/null && rmdir /run/netns 2>/dev/null
fi
rm -f "$base_dir/.netns-mount-made" 2>/dev/null
rmdir "$base_dir" /run/softfactory-real 2>/dev/null
left_pids=$(cgroup_pids; shim_pids)
if [[ -n "$left_pids" || -e "/run/netns/$netns" ]]; then
  echo "cluster-down: left behind: pids [$left_pids] netns [$(ls /run/netns 2>/dev/null | grep -x "$netns")]" >&2
  exit 1
fi
echo "Cluster $name is gone ($((SECONDS - t0))s)." >&2
