#!/usr/bin/env bash
# Builds the Debian root filesystem that both images of the real-cluster test use (the
# sample app's and PostgreSQL's), as a tarball in the per-user cache, and prints its path.
#
# One rootfs for both images: debootstrap is the slow part (~10 minutes), and the two
# images then share their base layer, so containerd stores it once. It is keyed by the
# package list and this script's own content, so a second run finds it and takes no time.
#
# Usage: hack/real/build-rootfs.sh   (root; needs debootstrap and Debian's mirror)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
suite=bookworm
mirror=${SOFTFACTORY_DEBIAN_MIRROR:-http://deb.debian.org/debian}
packages=(
  # the database, and pg_dump / pg_restore / psql for the backup and restore Jobs
  postgresql-15
  # the sample app
  python3-flask python3-flask-migrate python3-flask-sqlalchemy python3-psycopg2 gunicorn
)
cache_root=${SOFTFACTORY_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/softfactory-release-operator}
key=$( { echo "$suite ${packages[*]}"; cat "$0"; } | sha256sum | cut -c1-16)
out_dir="$cache_root/real/rootfs"
out="$out_dir/base-$key.tar"
if [[ -s "$out" ]]; then
  echo "$out"
  exit 0
fi
mkdir -p "$out_dir"
work=$(mktemp -d "$out_dir/.build-XXXXXX")
# Nothing is mounted inside the rootfs, so removing the directory is the whole cleanup.
trap 'rm -rf "$work"' EXIT
root="$work/root"
start=$SECONDS
echo "Building the image rootfs with debootstrap (first time only; ~10-15 minutes)..." >&2
debootstrap --variant=minbase "$suite" "$root" "$mirror" >"$work/debootstrap.log" 2>&1 || {
  tail -20 "$work/debootstrap.log" >&2; exit 1; }
# No service may start inside the chroot while packages are configured, and
# postgresql-common must not create a cluster: the database pod initialises its own.
printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
chmod +x "$root/usr/sbin/policy-rc.d"
mkdir -p "$root/etc/postgresql-common/createcluster.d"
echo "create_main_cluster = false" >"$root/etc/postgresql-common/createcluster.d/no-main.conf"
cp /etc/resolv.conf "$root/etc/resolv.conf"
chroot "$root" /usr/bin/env DEBIAN_FRONTEND=noninteractive LC_ALL=C \
  apt-get install -y -q --no-install-recommends "${packages[@]}" >"$work/apt.log" 2>&1 || {
  tail -20 "$work/apt.log" >&2; exit 1; }
chroot "$root" apt-get clean
rm -rf "$root"/var/cache/apt/* "$root"/var/lib/apt/lists/* "$root"/usr/share/doc/* \
  "$root"/usr/share/man/* "$root"/usr/share/info/* "$root/usr/sbin/policy-rc.d"
: >"$root/etc/resolv.conf"
# Reproducible-enough ordering; numeric owners so the tarball means the same anywhere.
tar --numeric-owner --sort=name -C "$root" -cf "$work/base.tar" .
mv "$work/base.tar" "$out"
echo "Built the rootfs in $((SECONDS - start))s: $(du -h "$out" | cut -f1)." >&2
echo "$out"
