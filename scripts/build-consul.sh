#!/usr/bin/env bash
# Builds the Consul agent v1.14.11 (MPL-2.0, the last openly licensed release) from the Go module
# proxy into a cache directory outside the source tree, only when it is missing.
# Prints the path of the binary on stdout.
set -euo pipefail
version=1.14.11
cache="${RAMD_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/ramd}"
dest="$cache/consul-$version/consul"
if [ -x "$dest" ] && "$dest" version 2>/dev/null | grep "v$version" >/dev/null; then
  echo "$dest"
  exit 0
fi
mkdir -p "$(dirname "$dest")"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
cat > go.mod <<MOD
module consulbuild

go 1.22
MOD
cat > tools.go <<'GO'
//go:build tools

package tools

import _ "github.com/hashicorp/consul"
GO
echo "building consul v$version into $dest (a few minutes, once)" >&2
go mod edit -require=github.com/hashicorp/consul@v$version
GOFLAGS=-mod=mod go mod tidy >&2
GOFLAGS=-mod=mod go build -trimpath -o "$dest.tmp" github.com/hashicorp/consul >&2
mv "$dest.tmp" "$dest"
"$dest" version >&2
echo "$dest"
