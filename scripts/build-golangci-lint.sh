#!/usr/bin/env bash
# Builds golangci-lint (pinned) from the Go module proxy into the cache directory, once.
# Prints the path of the binary on stdout.
set -euo pipefail
version=v2.15.0
cache="${RAMD_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/ramd}"
dest="$cache/golangci-lint-$version"
if [ -x "$dest/golangci-lint" ] && "$dest/golangci-lint" version 2>/dev/null | grep -q "${version#v}"; then
  echo "$dest/golangci-lint"
  exit 0
fi
mkdir -p "$dest"
echo "building golangci-lint $version into $dest (a few minutes, once)" >&2
GOBIN="$dest" GOFLAGS=-mod=mod go install "github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$version" >&2
echo "$dest/golangci-lint"
