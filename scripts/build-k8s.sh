#!/usr/bin/env bash
# Builds the control plane the operator's tests run against (controller-runtime's envtest):
# etcd v3.7.3 and kube-apiserver v1.37.2, both from the Go module proxy, into a cache
# directory outside the source tree, only when missing. Prints that directory on stdout: it
# is the value of KUBEBUILDER_ASSETS.
#
# k8s.io/kubernetes requires its staging modules at v0.0.0 and replaces them with local
# ./staging paths, which a dependent module does not inherit; the replaces below are generated
# from its own go.mod, each pointing at the matching v0.N.x release. A cold build takes several
# minutes (kube-apiserver is most of it) and grows the Go build cache by gigabytes; it runs
# under nice so it does not starve other work on the machine.
set -euo pipefail
k8s_version=1.37.2
etcd_version=3.7.3
cache="${RAMD_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/ramd}"
dest="$cache/k8s-$k8s_version"
nice_cmd=(nice -n "${RAMD_BUILD_NICE:-10}")

etcd_ok() { [ -x "$dest/etcd" ] && "$dest/etcd" --version 2>/dev/null | grep -q "etcd Version: $etcd_version\$"; }
apiserver_ok() { [ -x "$dest/kube-apiserver" ] && "$dest/kube-apiserver" --version 2>/dev/null | grep -q "v$k8s_version\$"; }

if etcd_ok && apiserver_ok; then
  echo "$dest"
  exit 0
fi
mkdir -p "$dest"
work=$(mktemp -d)
trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT
export GOFLAGS=-mod=mod

if ! etcd_ok; then
  echo "build-k8s: building etcd v$etcd_version into $dest (a couple of minutes, once)" >&2
  mkdir -p "$work/etcd"
  cat > "$work/etcd/go.mod" <<MOD
module etcdbuild

go 1.26.0

require go.etcd.io/etcd/server/v3 v$etcd_version
MOD
  cat > "$work/etcd/main.go" <<'SRC'
// Command etcd is etcd's server main, built from its Go module.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
SRC
  (cd "$work/etcd" && go mod tidy >&2 &&
    "${nice_cmd[@]}" go build -trimpath -ldflags '-s -w' -o "$dest/etcd.tmp" .) >&2
  mv "$dest/etcd.tmp" "$dest/etcd"
fi

if ! apiserver_ok; then
  echo "build-k8s: building kube-apiserver v$k8s_version into $dest (about 8 minutes cold, once)" >&2
  mkdir -p "$work/k8s"
  cd "$work/k8s"
  cat > go.mod <<MOD
module k8sbuild

go 1.26.0

require k8s.io/kubernetes v$k8s_version

tool k8s.io/kubernetes/cmd/kube-apiserver
MOD
  gomod=$(go mod download -json "k8s.io/kubernetes@v$k8s_version" |
    sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')
  [ -f "$gomod" ] || { echo "build-k8s: go.mod of k8s.io/kubernetes v$k8s_version not found" >&2; exit 1; }
  minor=${k8s_version#*.}
  staging=$(sed -n 's|^[[:space:]]*\(k8s\.io/[A-Za-z0-9._-]*\) => \./staging/.*|\1|p' "$gomod")
  [ -n "$staging" ] || { echo "build-k8s: no staging replaces found in $gomod" >&2; exit 1; }
  for m in $staging; do
    go mod edit -replace "$m=$m@v0.$minor"
  done
  go mod tidy >&2
  ld="-s -w -X k8s.io/component-base/version.gitVersion=v$k8s_version"
  ld="$ld -X k8s.io/component-base/version.gitMajor=${k8s_version%%.*} -X k8s.io/component-base/version.gitMinor=${minor%%.*}"
  "${nice_cmd[@]}" go build -trimpath -ldflags "$ld" -o "$dest/kube-apiserver.tmp" k8s.io/kubernetes/cmd/kube-apiserver >&2
  mv "$dest/kube-apiserver.tmp" "$dest/kube-apiserver"
fi

etcd_ok || { echo "build-k8s: $dest/etcd does not report v$etcd_version" >&2; exit 1; }
apiserver_ok || { echo "build-k8s: $dest/kube-apiserver does not report v$k8s_version" >&2; exit 1; }
echo "$dest"
