#!/usr/bin/env bash
# Builds helm v4.3.2 from the Go module proxy into the cache, only when missing, for the
# operator chart's tests (helm lint, helm template, then a server-side dry run of every
# rendered object against the envtest kube-apiserver). Prints the path of the binary.
set -euo pipefail
version=4.3.2
cache="${RAMD_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/ramd}"
dest="$cache/helm-v$version/helm"
# A stamp beside the binary records the version built (helm's own version string depends
# on link flags).
if [ -x "$dest" ] && [ "$(cat "$dest.version" 2>/dev/null)" = "$version" ]; then
  echo "$dest"
  exit 0
fi
mkdir -p "$(dirname "$dest")"
work=$(mktemp -d)
trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT
cd "$work"
echo "build-helm: building helm v$version into $dest (a few minutes, once)" >&2
cat > go.mod <<MOD
module helmbuild

go 1.26.0

require helm.sh/helm/v4 v$version

tool helm.sh/helm/v4/cmd/helm
MOD
export GOFLAGS=-mod=mod
go mod tidy >&2
nice -n "${RAMD_BUILD_NICE:-10}" go build -trimpath \
  -ldflags "-s -w -X helm.sh/helm/v4/internal/version.version=v$version" \
  -o "$dest.tmp" helm.sh/helm/v4/cmd/helm >&2
mv "$dest.tmp" "$dest"
"$dest" version --short >&2
echo "$version" > "$dest.version"
echo "$dest"
