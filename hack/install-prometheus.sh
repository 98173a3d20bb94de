#!/usr/bin/env bash
# Installs Prometheus and promtool from Debian's `prometheus` package, for the tests of
# internal/monitoring (promtool check/test rules) and internal/analysis (a real
# Prometheus server that each test run starts on 127.0.0.1 with its own port and data).
#
# Idempotent: does nothing when both binaries are already on PATH. Needs root (apt-get)
# and works on a fresh Debian machine that has only Go.
#
# The tests never use the package's system service. apt would normally start it,
# listening on every interface on port 9090; a policy-rc.d that forbids starting
# services is put in place for the install (only when the machine has none), and on a
# machine booted with systemd the unit is disabled and stopped afterwards, so nothing
# keeps running once this script returns.
set -euo pipefail

if command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1; then
  exit 0
fi

if [[ $(id -u) -ne 0 ]]; then
  echo "hack/install-prometheus.sh: needs root to apt-get install prometheus" >&2
  exit 1
fi

policy=/usr/sbin/policy-rc.d
made_policy=false
if [[ ! -e "$policy" ]]; then
  # Exit code 101 means "action forbidden" to invoke-rc.d and deb-systemd-invoke.
  printf '#!/bin/sh\nexit 101\n' >"$policy"
  chmod 755 "$policy"
  made_policy=true
fi
cleanup() {
  if [[ "$made_policy" == true ]]; then
    rm -f "$policy"
  fi
}
trap cleanup EXIT

echo "Installing Debian's prometheus package (promtool and prometheus)..." >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# No recommends: they pull in prometheus-node-exporter, another daemon the tests don't use.
apt-get install -y -qq --no-install-recommends prometheus >/dev/null

# On a machine booted with systemd the unit got enabled for the next boot; the tests run
# their own server, so keep the system one off.
if [[ -d /run/systemd/system ]] && command -v systemctl >/dev/null 2>&1; then
  systemctl disable --now prometheus.service >/dev/null 2>&1 || true
fi

command -v prometheus >/dev/null && command -v promtool >/dev/null
echo "Installed $(prometheus --version 2>&1 | head -n1)" >&2
