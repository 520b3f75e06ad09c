#!/usr/bin/env bash
# Installs the Debian packages the tests and the chaos suite use when they are missing (as root, from the
# machine's configured apt source): faketime (clocks that are off), iptables (faults inside network namespaces).
# Usage: bash e2e/tools/debian.sh PACKAGE...  Prints one line per package installed; quiet when all are present.
set -euo pipefail
missing=()
for pkg in "$@"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "debian.sh: ${missing[*]} missing and not root: install them with apt-get" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -q "${missing[@]}" >/dev/null 2>&1 || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q "${missing[@]}" >/dev/null; }
echo "debian.sh: installed ${missing[*]}"
