#!/usr/bin/env bash
# Installs what the real cluster needs from Debian's packages, skipped when present:
# containerd, runc, the CNI plugins, iptables, debootstrap, conntrack, socat.
# Usage: hack/real/install-deps.sh   (root)
set -euo pipefail
need=()
command -v containerd >/dev/null || need+=(containerd)
command -v runc >/dev/null || need+=(runc)
[[ -x /usr/lib/cni/bridge ]] || need+=(containernetworking-plugins)
command -v iptables >/dev/null || need+=(iptables)
command -v debootstrap >/dev/null || need+=(debootstrap)
command -v conntrack >/dev/null || need+=(conntrack)
command -v socat >/dev/null || need+=(socat)
command -v openssl >/dev/null || need+=(openssl)
if ((${#need[@]})); then
  echo "Installing ${need[*]} from Debian's packages..." >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
