#!/usr/bin/env bash
# Builds (or reuses from the cache) every program the local ClusterSet needs, from Go modules, version-stamped.
# Cache: ${MCS_GOSSIP_CACHE:-~/.cache/mcs-gossip}/tools/<name>-<version>-<wrapper hash>/ — outside git, shared by
# every clone on this machine. Result: symlinks in <repo>/.tools/bin. A warm cache makes this take about a second.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
# shellcheck source=versions.env
source "$here/versions.env"
cache=${MCS_GOSSIP_CACHE:-$HOME/.cache/mcs-gossip}
bin="$root/.tools/bin"
mkdir -p "$cache/tools" "$bin"
# Go caches live beside the binaries, so a fresh clone in CI reuses modules and compiled packages.
export GOMODCACHE=${GOMODCACHE:-$(go env GOMODCACHE)}
export GOCACHE=${GOCACHE:-$(go env GOCACHE)}
export GOFLAGS="-trimpath -buildvcs=false"
export CGO_ENABLED=0

log() { printf '[tools %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

hash_of() { cat "$@" 2>/dev/null | sha256sum | cut -c1-10; }

# What a tool's cache key covers beyond its wrapper module's go.mod and go.sum (paths under e2e/tools/; a directory
# means every file in it). A tool not named here keeps the key it always had.
declare -A key_extra=(
  [kube-proxy]=kubernetes/kube-proxy.sum
  [kwok]=kwok/patches
)

# build_tool NAME VERSION MODULE_DIR_OR_EMPTY CMD... — runs CMD in a temp dir with $out set; skips when cached.
build_tool() {
  local name=$1 version=$2 moddir=$3; shift 3
  local key="$name-$version"
  if [ -n "$moddir" ]; then
    local files=("$here/$moddir/go.mod" "$here/$moddir/go.sum") p
    for p in ${key_extra[$name]:-}; do
      if [ -d "$here/$p" ]; then
        mapfile -t -O "${#files[@]}" files < <(find "$here/$p" -type f | LC_ALL=C sort)
      else
        files+=("$here/$p")
      fi
    done
    key="$key-$(hash_of "${files[@]}")"
  fi
  local out="$cache/tools/$key"
  if [ -f "$out/.complete" ]; then
    log "$name $version: cached ($out)"
  else
    log "$name $version: building into $out (first time only; progress below)"
    rm -rf "$out.tmp" && mkdir -p "$out.tmp"
    local start=$SECONDS
    buildlog="$cache/tools/$key.build.log"
    : > "$buildlog"
    if ! ( set -e; out="$out.tmp"; "$@" ); then
      log "$name $version: BUILD FAILED; last lines of $buildlog:"
      tail -n 30 "$buildlog" >&2
      rm -rf "$out.tmp"
      return 1
    fi
    touch "$out.tmp/.complete"
    rm -rf "$out" && mv "$out.tmp" "$out"
    log "$name $version: built in $((SECONDS - start))s"
  fi
  local f
  for f in "$out"/*; do ln -sfn "$f" "$bin/$(basename "$f")"; done
}

k8s_ldflags() {
  local v=$KUBERNETES_VERSION major minor
  major=${v#v}; major=${major%%.*}
  minor=${v#v*.}; minor=${minor%%.*}
  local f=""
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    f+=" -X $p.gitVersion=$v -X $p.gitMajor=$major -X $p.gitMinor=$minor -X $p.gitTreeState=clean"
  done
  echo "-s -w$f"
}

build_kubernetes() {
  cd "$here/kubernetes"
  local c
  for c in kube-apiserver kube-controller-manager kube-scheduler kubectl; do
    log "  go build $c"
    go build -v -ldflags "$(k8s_ldflags)" -o "$out/$c" "k8s.io/kubernetes/cmd/$c" 2>&1 | progress "$c" || return 1
  done
}

# kube-proxy comes from the same wrapper module, but as its own cache entry: its extra dependencies (nftables,
# netlink, ipvs) need go.sum lines the other programs do not, and adding them to go.sum would change the key of
# (and so rebuild) the kubernetes entry. They live in kubernetes/kube-proxy.sum; the build reads a copy of go.mod
# with go.sum + kube-proxy.sum beside it (-modfile). At the next Kubernetes bump `go mod tidy` folds them into
# go.sum (tools.go imports kube-proxy) and kube-proxy.sum can go.
build_kube_proxy() {
  cd "$here/kubernetes" || return 1
  local mf
  mf=$(mktemp -d) || return 1
  cp go.mod "$mf/kube-proxy.mod" && cat go.sum kube-proxy.sum > "$mf/kube-proxy.sum" || { rm -rf "$mf"; return 1; }
  log "  go build kube-proxy"
  go build -v -modfile "$mf/kube-proxy.mod" -ldflags "$(k8s_ldflags)" -o "$out/kube-proxy" k8s.io/kubernetes/cmd/kube-proxy 2>&1 |
    progress kube-proxy || { rm -rf "$mf"; return 1; }
  rm -rf "$mf"
}

build_etcd() {
  cd "$here/etcd"
  go build -v -ldflags "-s -w" -o "$out/etcd" go.etcd.io/etcd/server/v3 2>&1 | progress etcd || return 1
}

# kwok is built from a copy of its module with the files under kwok/patches/ put in (same path as in the module, plus
# .patched; see docs/tools.md), through a copy of go.mod that replaces sigs.k8s.io/kwok by that copy (-modfile).
# (`go build -overlay` cannot do it: it refuses to replace files beneath GOMODCACHE.) Each patched file names the
# sha256 of the upstream file it was made from: a kwok bump that changes that file fails the build instead of
# silently dropping the upstream change.
# The directory of kwok's module in the module cache, downloaded first: `go list -m` names no directory for a module
# the cache does not hold yet (a cold machine), and `go build` would fetch it only later.
kwok_module_dir() {
  local dir
  (cd "$here/kwok" && go mod download sigs.k8s.io/kwok) || return 1
  dir=$(cd "$here/kwok" && go list -m -f '{{.Dir}}' sigs.k8s.io/kwok) || return 1
  [ -n "$dir" ] && [ -d "$dir" ] || { echo "kwok: the module cache holds no sigs.k8s.io/kwok after download" >&2; return 1; }
  printf '%s\n' "$dir"
}

build_kwok() {
  cd "$here/kwok" || return 1
  local src patches="$here/kwok/patches" tmp f rel sum
  src=$(kwok_module_dir) || return 1
  tmp=$(mktemp -d -t mcs-gossip-kwok-patched.XXXXXX) || return 1
  cp -r "$src" "$tmp/kwok" && chmod -R u+w "$tmp/kwok" || { rm -rf "$tmp"; return 1; }
  while IFS= read -r f; do
    rel=${f#"$patches/"}
    rel=${rel%.patched}
    sum=$(sha256sum < "$src/$rel" 2>/dev/null | cut -c1-64)
    if [ ! -f "$src/$rel" ] || ! grep -q "upstream sha256 $sum" "$f"; then
      printf 'kwok patch %s: made for another upstream %s; redo it\n' "$f" "$rel" >> "$buildlog"
      rm -rf "$tmp"
      return 1
    fi
    cp "$f" "$tmp/kwok/$rel"
  done < <(find "$patches" -type f -name '*.patched' | LC_ALL=C sort)
  { cat go.mod && printf '\nreplace sigs.k8s.io/kwok => %s\n' "$tmp/kwok"; } > "$tmp/kwok.mod" && cp go.sum "$tmp/kwok.sum" ||
    { rm -rf "$tmp"; return 1; }
  go build -v -modfile "$tmp/kwok.mod" -ldflags "-s -w -X sigs.k8s.io/kwok/pkg/consts.Version=${KWOK_VERSION#v}" -o "$out/kwok" sigs.k8s.io/kwok/cmd/kwok 2>&1 |
    progress kwok || { rm -rf "$tmp"; return 1; }
  rm -rf "$tmp"
  # kwok's stage files (node and pod lifecycles) ship in the module zip.
  mkdir -p "$out/kwok-stages"
  cp -r "$src/kustomize/stage/." "$out/kwok-stages/"
  chmod -R u+w "$out/kwok-stages"
}

# kwok's Exec and Logs CRDs (and the rest of its CRDs), from its module zip: `up --data-plane` installs Exec and Logs
# so the Pods' runner can say per Pod how kwok serves exec and logs. Result: .tools/bin/kwok-crds/.
fetch_kwok_crds() {
  local src
  src=$(kwok_module_dir) || return 1
  mkdir -p "$out/kwok-crds"
  cp "$src"/kustomize/crd/bases/*.yaml "$out/kwok-crds/" && chmod -R u+w "$out/kwok-crds"
}

build_helm() {
  cd "$here/helm"
  go build -v -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION" -o "$out/helm" helm.sh/helm/v3/cmd/helm 2>&1 | progress helm || return 1
}

# distribution's registry: a local OCI registry for the image and chart release test (e2e/tests/image.test.ts).
build_registry() {
  cd "$here/registry"
  local pkg=github.com/distribution/distribution/v3
  go build -v -ldflags "-s -w -X $pkg/version.version=$REGISTRY_VERSION -X $pkg/version.mainpkg=$pkg" -o "$out/registry" "$pkg/cmd/registry" 2>&1 | progress registry || return 1
}

build_coredns() {
  cd "$here/coredns"
  go build -v -ldflags "-s -w" -o "$out/coredns" github.com/coredns/coredns 2>&1 | progress coredns || return 1
}

# The Prometheus Operator's ServiceMonitor and PrometheusRule CRDs, from its module zip through the Go module proxy
# (no build): the chart's monitoring test (e2e/tests/chart-monitoring.test.ts) validates the chart's objects
# against them on a real API server. Result: .tools/bin/monitoring-crds/.
fetch_monitoring_crds() {
  local mod=github.com/prometheus-operator/prometheus-operator json dir f
  json=$(cd "$out" && go mod download -json "$mod@$PROMETHEUS_OPERATOR_VERSION" 2>>"$buildlog") || {
    printf '%s\n' "$json" >> "$buildlog"
    return 1
  }
  dir=$(printf '%s\n' "$json" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')
  mkdir -p "$out/monitoring-crds"
  for f in servicemonitors prometheusrules; do
    cp "$dir/example/prometheus-operator-crd/monitoring.coreos.com_$f.yaml" "$out/monitoring-crds/" 2>>"$buildlog" || return 1
  done
  chmod -R u+w "$out/monitoring-crds"
}

# `go build -v` names each package it compiles; show a count every 100 so a cold build visibly progresses.
progress() {
  local n=0 line
  while IFS= read -r line; do
    printf '%s\n' "$line" >> "$buildlog"
    n=$((n + 1))
    if [ $((n % 100)) -eq 0 ]; then log "  $1: $n packages compiled"; fi
  done
  return 0
}

want=("$@")
sel() { [ ${#want[@]} -eq 0 ] || [[ " ${want[*]} " == *" $1 "* ]]; }
if sel etcd; then build_tool etcd "$ETCD_VERSION" etcd build_etcd; fi
if sel kwok; then build_tool kwok "$KWOK_VERSION" kwok build_kwok; fi
if sel kwok-crds; then build_tool kwok-crds "$KWOK_VERSION" "" fetch_kwok_crds; fi
if sel helm; then build_tool helm "$HELM_VERSION" helm build_helm; fi
if sel coredns; then build_tool coredns "$COREDNS_VERSION" coredns build_coredns; fi
if sel registry; then build_tool registry "$REGISTRY_VERSION" registry build_registry; fi
# Optional: without the module proxy only the chart's monitoring test misses them (it says so).
if sel monitoring-crds; then
  build_tool monitoring-crds "$PROMETHEUS_OPERATOR_VERSION" "" fetch_monitoring_crds ||
    log "monitoring-crds $PROMETHEUS_OPERATOR_VERSION: not fetched (no Go module proxy?); the chart monitoring test needs them"
fi
if sel kubernetes; then build_tool kubernetes "$KUBERNETES_VERSION" kubernetes build_kubernetes; fi
if sel kube-proxy; then build_tool kube-proxy "$KUBERNETES_VERSION" kubernetes build_kube_proxy; fi
log "tools ready in $bin"
