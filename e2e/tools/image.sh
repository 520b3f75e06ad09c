#!/usr/bin/env bash
# Builds the mcs-gossip image from the repository's Dockerfile with podman, or reuses it when the same inputs were
# built before. Prints the image reference on stdout; progress goes to stderr.
#
#   bash e2e/tools/image.sh [--base IMAGE] [--version V] [--tag REF]...
#
# --base     the Dockerfile's BASE; default: the test base from e2e/tools/image-base.sh (built or reused). Any other
#            base is used when present in podman's store, else pulled (this fails on machines without access to its
#            registry, e.g. Docker Hub's node:24-bookworm-slim here: exit status 3).
# --version  stamps the version `mcs-gossip version` prints (the Dockerfile's VERSION); default package.json's.
# --tag      extra references to tag the image with (e.g. REGISTRY/PATH/mcs-gossip:V for a release).
#
# The image is localhost/mcs-gossip:<version>-<hash>, the hash covering the build inputs: Dockerfile, .dockerignore,
# package.json, package-lock.json, tsconfig*.json, src/ (without tests, as .dockerignore), the base image's id and
# the version. An existing image of that name is reused as it is; podman's layer cache makes a rebuild after a
# change to src/ skip npm ci.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
export CONTAINERS_CONF=${CONTAINERS_CONF:-$here/podman/containers.conf}

log() { printf '[image %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
usage() { echo "image.sh: $*; usage: image.sh [--base IMAGE] [--version V] [--tag REF]..." >&2; exit 2; }

base="" version="" tags=()
while [ $# -gt 0 ]; do
  case $1 in
    --base) [ $# -ge 2 ] || usage "--base needs a value"; base=$2; shift 2 ;;
    --base=*) base=${1#*=}; shift ;;
    --version) [ $# -ge 2 ] || usage "--version needs a value"; version=$2; shift 2 ;;
    --version=*) version=${1#*=}; shift ;;
    --tag) [ $# -ge 2 ] || usage "--tag needs a value"; tags+=("$2"); shift 2 ;;
    --tag=*) tags+=("${1#*=}"); shift ;;
    *) usage "unknown argument $1" ;;
  esac
done
command -v podman >/dev/null || { log "podman is required (bash e2e/tools/debian.sh podman runc)"; exit 1; }

start=$SECONDS
if [ -z "$base" ]; then
  base=$(bash "$here/image-base.sh")
elif ! podman image exists "$base"; then
  log "base $base: not present, pulling"
  if ! podman pull -q "$base" >/dev/null; then
    log "cannot pull the base image $base here (no access to its registry)."
    log "Build against the test base instead: --base \"\$(bash e2e/tools/image-base.sh)\" (docs/image.md)."
    exit 3
  fi
fi
base_id=$(podman image inspect --format '{{.Id}}' "$base")
pkg_version=$(sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' "$root/package.json" | head -n1)
version=${version:-$pkg_version}

hash=$(
  cd "$root"
  {
    printf 'base %s\nversion %s\n' "$base_id" "$version"
    find Dockerfile .dockerignore package.json package-lock.json tsconfig.json tsconfig.build.json src -type f \
      ! -name '*.test.ts' -print0 | LC_ALL=C sort -z | xargs -0 sha256sum
  } | sha256sum | cut -c1-12
)
ref="localhost/mcs-gossip:$version-$hash"

# A TLS-intercepting proxy (as on the machines here): npm in the build needs its CA, passed as the Dockerfile's
# build secret npm-ca (not kept in the image). Taken from NODE_EXTRA_CA_CERTS, else from npm's cafile setting.
ca=${NODE_EXTRA_CA_CERTS:-}
if [ -z "$ca" ] && command -v npm >/dev/null; then ca=$(npm config get cafile 2>/dev/null || true); fi
secret=()
if [ -n "$ca" ] && [ "$ca" != null ] && [ -r "$ca" ]; then secret=(--secret "id=npm-ca,src=$ca"); fi

if podman image exists "$ref"; then
  log "$ref: same inputs built before, reused"
else
  log "$ref: podman build (base $base)"
  podman build --network host --layers "${secret[@]}" \
    --build-arg "BASE=$base" --build-arg "VERSION=$version" \
    --label "org.opencontainers.image.version=$version" \
    --label "org.opencontainers.image.title=mcs-gossip" \
    --label "org.opencontainers.image.base.name=$base" \
    -t "$ref" -f "$root/Dockerfile" "$root" >&2
  log "$ref: built in $((SECONDS - start))s"
fi
for t in "${tags[@]}"; do
  podman tag "$ref" "$t"
  log "tagged $t"
done
echo "$ref"
