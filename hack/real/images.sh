#!/usr/bin/env bash
# Builds every image the real-cluster test needs into one `docker save` archive in the
# per-user cache, and prints its path; `ctr images import` loads it. No registry and no
# image builder: a layer is a tarball and an image is a JSON config naming its layers.
#
#   softfactory.local/pause:1                       the pod sandbox (hack/real/pause)
#   softfactory.local/postgres:15                   PostgreSQL 15; also the backup image
#   softfactory.local/softfactory-app:1.0.0         the sample app, migration 0001
#   softfactory.local/softfactory-app:2.0.0         + 0002 (adds items.status, backfills)
#   softfactory.local/softfactory-app:3.0.0         + 0003 and 0004: items.name renamed to
#                                                   title in two steps (expand, contract)
#   softfactory.local/softfactory-app:3.0.0-broken  0001, 0002 + a migration that fails (faults/)
#   softfactory.local/softfactory-app:2.0.0-root    2.0.0 without a USER: runs as root
#
# The app and PostgreSQL images share one base layer (hack/real/build-rootfs.sh), stored
# once in the archive and once in containerd. The archive is keyed by the content of
# everything it is made from, so an unchanged tree reuses it.
#
# Usage: hack/real/images.sh   (root, for debootstrap the first time)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
app_src=$repo/examples/softfactory-app
cache_root=${SOFTFACTORY_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/softfactory-release-operator}

base=$("$here/build-rootfs.sh")
# What goes into the images: not the deploy/ manifests beside the app.
key=$( { echo "$base"; cat "$0" "$here/postgres-entrypoint.sh"; find "$app_src/app.py" "$app_src/gunicorn.conf.py" \
  "$app_src/migrations" "$app_src/faults" "$here/pause" -type f -not -name '*.pyc' | sort | xargs cat; } |
  sha256sum | cut -c1-16)
out_dir=$cache_root/real/images
out=$out_dir/images-$key.tar
if [[ -s "$out" ]]; then
  echo "$out"
  exit 0
fi
mkdir -p "$out_dir"
start=$SECONDS
work=$(mktemp -d "$out_dir/.build-XXXXXX")
trap 'rm -rf "$work"' EXIT
archive=$work/archive
mkdir -p "$archive"

# add_layer TAR: puts TAR in the archive under its digest and prints the digest.
add_layer() {
  local digest
  digest=$(sha256sum "$1" | cut -d' ' -f1)
  mkdir -p "$archive/$digest"
  [[ -e "$archive/$digest/layer.tar" ]] || cp "$1" "$archive/$digest/layer.tar"
  echo "$digest"
}
# pack_dir DIR TAR: a reproducible layer from DIR, owned by root.
pack_dir() {
  tar --numeric-owner --owner=0 --group=0 --mtime=@0 --sort=name -C "$1" -cf "$2" .
}
manifest=()
# add_image TAG USER ENTRYPOINT_JSON ENV_JSON WORKDIR LAYER_DIGEST...: writes the config
# and remembers the manifest entry. USER empty means none (the image runs as root).
add_image() {
  local tag=$1 user=$2 entrypoint=$3 env=$4 workdir=$5
  shift 5
  local diff_ids="" layers="" d
  for d in "$@"; do
    diff_ids+="${diff_ids:+,}\"sha256:$d\""
    layers+="${layers:+,}\"$d/layer.tar\""
  done
  local config
  config=$(printf '{"architecture":"amd64","os":"linux","created":"1970-01-01T00:00:00Z","config":{"User":"%s","Env":%s,"Entrypoint":%s,"WorkingDir":"%s"},"rootfs":{"type":"layers","diff_ids":[%s]}}' \
    "$user" "$env" "$entrypoint" "$workdir" "$diff_ids")
  local config_digest
  config_digest=$(printf '%s' "$config" | sha256sum | cut -d' ' -f1)
  printf '%s' "$config" >"$archive/$config_digest.json"
  manifest+=("{\"Config\":\"$config_digest.json\",\"RepoTags\":[\"$tag\"],\"Layers\":[$layers]}")
}

path_env='"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"'

echo "Packing the images..." >&2
# The sandbox image: one static binary.
mkdir -p "$work/pause"
(cd "$repo" && CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o "$work/pause/pause" ./hack/real/pause)
pack_dir "$work/pause" "$work/pause.tar"
pause_layer=$(add_layer "$work/pause.tar")
add_image softfactory.local/pause:1 65535 '["/pause"]' "[$path_env]" / "$pause_layer"

base_layer=$(add_layer "$base")

# PostgreSQL: Debian's postgres user (its uid is whatever the package got) runs it.
pg_ids=$(tar -xOf "$base" ./etc/passwd | awk -F: '$1 == "postgres" { print $3 ":" $4 }')
[[ -n "$pg_ids" ]] || { echo "images: no postgres user in the rootfs" >&2; exit 1; }
mkdir -p "$work/pg/usr/local/bin"
install -m 0755 "$here/postgres-entrypoint.sh" "$work/pg/usr/local/bin/postgres-entrypoint"
pack_dir "$work/pg" "$work/pg.tar"
pg_layer=$(add_layer "$work/pg.tar")
# PostgreSQL's own binaries come first on PATH: /usr/bin/pg_dump is Debian's Perl wrapper.
pg_path='"PATH=/usr/lib/postgresql/15/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"'
add_image softfactory.local/postgres:15 "$pg_ids" '["/usr/local/bin/postgres-entrypoint"]' \
  "[$pg_path,\"PGDATA=/var/lib/postgresql/data/pgdata\"]" / "$base_layer" "$pg_layer"

# The app: version N carries the migrations up to its own.
app_env="[$path_env,\"PYTHONDONTWRITEBYTECODE=1\",\"PYTHONUNBUFFERED=1\",\"FLASK_APP=app:app\"]"
app_entry='["gunicorn","--config","/app/gunicorn.conf.py","app:app"]'
# app_layer VERSION MIGRATION_FILE...: the app's files with those migrations.
app_layer() {
  local version=$1 dir=$work/app-$1
  shift
  mkdir -p "$dir/app/migrations/versions"
  cp "$app_src/app.py" "$app_src/gunicorn.conf.py" "$dir/app/"
  cp "$app_src/migrations/alembic.ini" "$app_src/migrations/env.py" "$app_src/migrations/script.py.mako" "$dir/app/migrations/"
  cp "$@" "$dir/app/migrations/versions/"
  echo "$version" >"$dir/app/VERSION"
  pack_dir "$dir" "$dir.tar"
  add_layer "$dir.tar"
}
v=$app_src/migrations/versions
app1=$(app_layer 1.0.0 "$v/0001_create_items.py")
app2=$(app_layer 2.0.0 "$v/0001_create_items.py" "$v/0002_item_status.py")
app3=$(app_layer 3.0.0 "$v/0001_create_items.py" "$v/0002_item_status.py" "$v/0003_item_title_expand.py" \
  "$v/0004_item_title_contract.py")
# The broken image's own 0003 replaces the rename's: its migration fails, it never serves.
app3broken=$(app_layer 3.0.0-broken "$v/0001_create_items.py" "$v/0002_item_status.py" "$app_src/faults/0003_broken.py")
app_user=10001:10001
add_image softfactory.local/softfactory-app:1.0.0 "$app_user" "$app_entry" "$app_env" /app "$base_layer" "$app1"
add_image softfactory.local/softfactory-app:2.0.0 "$app_user" "$app_entry" "$app_env" /app "$base_layer" "$app2"
add_image softfactory.local/softfactory-app:3.0.0 "$app_user" "$app_entry" "$app_env" /app "$base_layer" "$app3"
add_image softfactory.local/softfactory-app:3.0.0-broken "$app_user" "$app_entry" "$app_env" /app "$base_layer" "$app3broken"
# The mistake the operator must report: an image that declares no USER.
add_image softfactory.local/softfactory-app:2.0.0-root "" "$app_entry" "$app_env" /app "$base_layer" "$app2"

(IFS=,; echo "[${manifest[*]}]") >"$archive/manifest.json"
tar --numeric-owner --owner=0 --group=0 --mtime=@0 --sort=name -C "$archive" -cf "$work/images.tar" .
mv "$work/images.tar" "$out"
# Older archives are only a waste of disk once a new one exists.
find "$out_dir" -maxdepth 1 -name 'images-*.tar' ! -path "$out" -delete
echo "Packed the images in $((SECONDS - start))s: $(du -h "$out" | cut -f1)." >&2
echo "$out"
