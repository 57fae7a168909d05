#!/usr/bin/env bash
# Builds the Nomad agent v1.6.2 (MPL-2.0, the last openly licensed release; never a later one)
# from the Go module proxy into a cache directory outside the source tree, only when it is
# missing. Prints the path of the binary on stdout.
#
# Nomad v1.6.2 does not compile against the oldest nomad/api module the proxy still serves:
# that module dropped four fields the v1.6.2 agent uses. The build copies that api module
# out of the module cache and gives the fields back (a build-time patch; no Nomad source is
# kept in this repository). The result is an old, patched release, used only to prove that
# ramd's job specs are accepted and scheduled by a real Nomad (docs/DEPLOYMENT.md); it says
# nothing about current Nomad releases.
set -euo pipefail
version=1.6.2
api_version=v0.0.0-20251216171439-1dee0671280e
cache="${RAMD_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/ramd}"
dest="$cache/nomad-$version/nomad"
if [ -x "$dest" ] && "$dest" version 2>/dev/null | grep -q "^Nomad v$version\b"; then
  echo "$dest"
  exit 0
fi
mkdir -p "$(dirname "$dest")"
work=$(mktemp -d)
trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT
cd "$work"
echo "building nomad v$version into $dest (a few minutes, once)" >&2

# The served api module, copied writable out of the module cache.
api_dir=$(GOFLAGS=-mod=mod go mod download -json "github.com/hashicorp/nomad/api@$api_version" |
  sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
[ -d "$api_dir" ] || { echo "build-nomad: nomad/api $api_version not in the module cache" >&2; exit 1; }
cp -r "$api_dir" nomad-api
chmod -R u+w nomad-api
find nomad-api -name '*_test.go' -delete

# patch FILE PERL-EXPRESSION CHECK-REGEX: apply an edit and insist that it took.
patch() {
  perl -0pi -e "$2" "nomad-api/$1"
  grep -Eq "$3" "nomad-api/$1" || { echo "build-nomad: patch of $1 did not apply ($3)" >&2; exit 1; }
}
# 1. the agent's /v1/jobs/parse handler reads JobsParseRequest.HCLv1
patch jobs.go 's/(type JobsParseRequest struct \{\n)/$1\tHCLv1 bool\n/' 'HCLv1 bool'
# 2. and 3. Job.ConsulToken and Job.VaultToken, defaulted to "" (the agent dereferences them)
patch jobs.go 's/(\n\tID +\*string +`hcl:"id,optional"`\n)/$1\tConsulToken *string `hcl:"consul_token,optional"`\n\tVaultToken *string `hcl:"vault_token,optional"`\n/' 'ConsulToken \*string'
patch jobs.go 's/(func \(j \*Job\) Canonicalize\(\) \{\n)/$1\tif j.ConsulToken == nil {\n\t\tj.ConsulToken = pointerOf("")\n\t}\n\tif j.VaultToken == nil {\n\t\tj.VaultToken = pointerOf("")\n\t}\n/' 'j.VaultToken = pointerOf'
# 4. v1.6.2's quota command builds a QuotaLimit.RegionLimit from *api.Resources
patch quota.go 's/RegionLimit \*QuotaResources/RegionLimit *Resources/' 'RegionLimit \*Resources'

cat > go.mod <<MOD
module nomadbuild

go 1.26.0

require github.com/hashicorp/nomad v$version

replace (
	github.com/Microsoft/go-winio => github.com/endocrimes/go-winio v0.4.13-0.20190628114223-fb47a8b41948
	github.com/armon/go-metrics => github.com/armon/go-metrics v0.0.0-20230509193637-d9ca9af9f1f9
	github.com/hashicorp/hcl => github.com/hashicorp/hcl v1.0.1-0.20201016140508-a07e7d50bbee
	github.com/hashicorp/nomad/api => ./nomad-api
)

tool github.com/hashicorp/nomad
MOD
GOFLAGS=-mod=mod go mod tidy >&2
GOFLAGS=-mod=mod go build -trimpath -ldflags '-s -w' -o "$dest.tmp" github.com/hashicorp/nomad >&2
mv "$dest.tmp" "$dest"
"$dest" version >&2
echo "$dest"
