#!/usr/bin/env bash
# Runs every Go fuzz target of the ramd module for FUZZTIME each (default 5s): the request
# bodies of the API, the records read from Consul, the HA decision, the parameter checks...
# `go test` alone runs only their seed corpora; this lets the fuzzer search past them.
# `make test` calls it with 5s per target, `make chaos` with minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime="${FUZZTIME:-5s}"
go="${GO:-go}"
status=0
# Only this module: nomad/ and operator/ are modules of their own.
while IFS=: read -r file name; do
  pkg="./$(dirname "$file")"
  echo "fuzz: $pkg $name for $fuzztime"
  if ! "$go" test -run '^$' -fuzz "^${name}\$" -fuzztime "$fuzztime" "$pkg"; then
    echo "fuzz: $pkg $name FAILED (the failing input is under $pkg/testdata/fuzz/$name)" >&2
    status=1
  fi
done < <(grep -rhoE --include='*_test.go' -e '^func (Fuzz[A-Za-z0-9_]+)\(' --with-filename . \
  | grep -vE '^\./(nomad|operator)/' | sed -E 's/^\.\/([^:]+):func (Fuzz[A-Za-z0-9_]+)\(/\1:\2/' | sort -u)
exit "$status"
