#!/usr/bin/env bash
# Runs every Go fuzz target of the ramd module for FUZZTIME each (default 5s): the request
# bodies of the API, the records read from Consul, the HA decision, the parameter checks...
# `go test` alone runs only their seed corpora; this lets the fuzzer search past them.
# `make test` calls it with 5s per target, `make chaos` with minutes.
#
# A finding always writes its input under testdata/fuzz/<target> ("Failing input written
# to"). Go's fuzzing coordinator before 1.27 can also fail a target at the -fuzztime
# boundary with a bare "context deadline exceeded" and no input, when a busy machine keeps
# a worker from stopping in time. Such a run found nothing: it is run again (at most
# twice), and a third bare deadline fails like any other failure.
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime="${FUZZTIME:-5s}"
go="${GO:-go}"
status=0
out="$(mktemp)"
trap 'rm -f "$out"' EXIT

# fuzz_one PKG NAME: 0 when the target passed, 1 on a finding or any other failure, 2 on a
# bare coordinator deadline with no input written.
fuzz_one() {
  if "$go" test -run '^$' -fuzz "^${2}\$" -fuzztime "$fuzztime" "$1" 2>&1 | tee "$out"; then
    return 0
  fi
  if ! grep -q 'Failing input written to' "$out" && grep -q 'context deadline exceeded' "$out"; then
    return 2
  fi
  return 1
}

# Only this module: nomad/ and operator/ are modules of their own.
while IFS=: read -r file name; do
  pkg="./$(dirname "$file")"
  for attempt in 1 2 3; do
    echo "fuzz: $pkg $name for $fuzztime (attempt $attempt)"
    rc=0
    fuzz_one "$pkg" "$name" || rc=$?
    if [ "$rc" -ne 2 ] || [ "$attempt" -eq 3 ]; then
      break
    fi
    echo "fuzz: $pkg $name stopped at the fuzztime boundary with no input written; running it again" >&2
  done
  if [ "$rc" -ne 0 ]; then
    echo "fuzz: $pkg $name FAILED (a failing input, if one was found, is under $pkg/testdata/fuzz/$name)" >&2
    status=1
  fi
done < <(grep -rhoE --include='*_test.go' -e '^func (Fuzz[A-Za-z0-9_]+)\(' --with-filename . \
  | grep -vE '^\./(nomad|operator)/' | sed -E 's/^\.\/([^:]+):func (Fuzz[A-Za-z0-9_]+)\(/\1:\2/' | sort -u)
exit "$status"
