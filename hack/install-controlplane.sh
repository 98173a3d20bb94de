#!/usr/bin/env bash
# Builds the Kubernetes control plane binaries from the Go module proxy into a per-user
# cache directory keyed by version, and prints that directory.
#
# No machine here can download envtest or Kubernetes release binaries, so each one is
# compiled from its Go module at a pinned version (hack/controlplane, hack/etcd,
# hack/kwok hold the pins). A binary already in the cache is never rebuilt, and the Go
# build cache makes a rebuild after a cache wipe take seconds, not minutes.
#
# Usage: hack/install-controlplane.sh [envtest|cluster|real|all]
#   envtest  kube-apiserver, etcd (what envtest needs; the default)
#   cluster  envtest's set plus kube-controller-manager, kube-scheduler, kubectl, kwok, kwokctl
#   real     envtest's set plus kube-controller-manager, kube-scheduler, kubectl, kubelet,
#            kube-proxy (the real single-node cluster of hack/real; kubelet ~10 min cold)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
set_name=${1:-envtest}

# module_version MODULE GO_MOD: the version GO_MOD requires of MODULE, from either the
# one-line form (require m v1) or a require block (m v1 // indirect).
module_version() {
  awk -v m="$1" '{ for (i = 1; i < NF; i++) if ($i == m && $(i + 1) ~ /^v[0-9]/) { print $(i + 1); exit } }' "$2"
}
k8s_version=$(module_version k8s.io/kubernetes "$here/controlplane/go.mod")
etcd_version=$(module_version go.etcd.io/etcd/server/v3 "$here/etcd/go.mod")
kwok_version=$(module_version sigs.k8s.io/kwok "$here/kwok/go.mod")
cache_root=${SOFTFACTORY_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/softfactory-release-operator}
bin_dir="$cache_root/controlplane/k8s-${k8s_version}_etcd-${etcd_version}_kwok-${kwok_version}"
mkdir -p "$bin_dir"

# Version stamp for the binaries that report it to the cluster (a node whose kubelet is
# unstamped says v0.0.0-master). Built from the module at k8s_version, so that is the truth.
k8s_minor=${k8s_version#v1.}
k8s_minor=${k8s_minor%%.*}
version_ldflags=""
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  version_ldflags+=" -X $pkg.gitVersion=$k8s_version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$k8s_minor"
  version_ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
done

# build NAME MODULE_DIR PACKAGE [LDFLAGS]: go build PACKAGE inside MODULE_DIR unless
# bin_dir has it.
build() {
  local name=$1 module_dir=$2 pkg=$3 extra_ldflags=${4:-}
  if [[ -x "$bin_dir/$name" ]]; then
    return 0
  fi
  echo "Building $name from $pkg (first time only; kube-apiserver takes ~5 minutes cold)..." >&2
  local start=$SECONDS
  # CGO off gives static binaries, like the released ones. Build to a temporary name and
  # rename, so an interrupted build never leaves a half-written binary that looks cached.
  (cd "$here/$module_dir" && CGO_ENABLED=0 go build -trimpath -ldflags="-s -w$extra_ldflags" -o "$bin_dir/.$name.tmp" "$pkg")
  mv "$bin_dir/.$name.tmp" "$bin_dir/$name"
  echo "Built $name in $((SECONDS - start))s." >&2
}

build etcd etcd go.etcd.io/etcd/server/v3
build kube-apiserver controlplane k8s.io/kubernetes/cmd/kube-apiserver
if [[ "$set_name" == cluster || "$set_name" == all ]]; then
  build kubectl controlplane k8s.io/kubernetes/cmd/kubectl
  build kube-controller-manager controlplane k8s.io/kubernetes/cmd/kube-controller-manager
  build kube-scheduler controlplane k8s.io/kubernetes/cmd/kube-scheduler
  build kwok kwok sigs.k8s.io/kwok/cmd/kwok
  build kwokctl kwok sigs.k8s.io/kwok/cmd/kwokctl
fi
if [[ "$set_name" == real || "$set_name" == all ]]; then
  build kubectl controlplane k8s.io/kubernetes/cmd/kubectl
  build kube-controller-manager controlplane k8s.io/kubernetes/cmd/kube-controller-manager
  build kube-scheduler controlplane k8s.io/kubernetes/cmd/kube-scheduler
  build kubelet controlplane k8s.io/kubernetes/cmd/kubelet "$version_ldflags"
  build kube-proxy controlplane k8s.io/kubernetes/cmd/kube-proxy "$version_ldflags"
fi
echo "$bin_dir"
