#!/usr/bin/env bash
# Prints the version ramd, ramd-fence and ramctrl are stamped with (make build, the image):
# the nearest v* tag as git describe gives it without the "v" (1.2.0, or 1.2.0-3-gabc1234
# three commits later), else the base version with the commit (0.1.0-dev+gabc1234);
# ".dirty" marks uncommitted changes. Outside a git checkout it prints the base version
# with "-dev".
set -euo pipefail
base=0.1.0
cd "$(dirname "$0")/.."
if ! git rev-parse --git-dir >/dev/null 2>&1; then
  echo "$base-dev"
  exit 0
fi
dirty=""
git diff --quiet HEAD -- 2>/dev/null || dirty=".dirty"
if v="$(git describe --tags --match 'v[0-9]*' 2>/dev/null)"; then
  echo "${v#v}${dirty:+-dirty}"
else
  echo "$base-dev+g$(git rev-parse --short HEAD)$dirty"
fi
