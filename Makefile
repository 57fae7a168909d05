# ramd developer targets. `make test` is the test command of the README and of CI.
# Each recipe runs as one bash script (.ONESHELL) that stops at the first failing command.

GO        ?= go
BIN       := bin
CONSUL_SH := scripts/build-consul.sh
NOMAD_SH  := scripts/build-nomad.sh
K8S_SH    := scripts/build-k8s.sh
HELM_SH   := scripts/build-helm.sh
PG_GLOB   := /usr/lib/postgresql/*/bin/initdb
# Consul binary for the tests: $RAMD_CONSUL_BIN if set, else the one build-consul.sh caches.
USE_CONSUL = export RAMD_CONSUL_BIN="$${RAMD_CONSUL_BIN:-$$($(CONSUL_SH))}"

SHELL       := bash
.SHELLFLAGS := -euo pipefail -c
.ONESHELL:
.PHONY: build consul nomad k8s helm deps test fuzz test-nomad test-operator operator-generate bench chaos lint demo clean

# The version the binaries report (ramd --version, ramctrl version, /patroni, member
# records): scripts/version.sh, from git describe; override with make build VERSION=1.2.3.
VERSION ?= $(shell scripts/version.sh)
LDFLAGS := -X github.com/ramd-project/ramd/daemon.Version=$(VERSION) -X main.version=$(VERSION)

# Static binaries (no libc: they run on any Linux, as in the container image) without gin's
# MessagePack codec, which ramd does not speak: 9 MB smaller and 4-5 MiB less resident per
# process than a default build (docs/BENCHMARKS.md, footprint).
GOTAGS  := nomsgpack
build:
	export CGO_ENABLED=0
	$(GO) build -tags $(GOTAGS) -ldflags "$(LDFLAGS)" -o $(BIN)/ramd ./cmd/ramd
	$(GO) build -tags $(GOTAGS) -ldflags "$(LDFLAGS)" -o $(BIN)/ramd-fence ./cmd/ramd-fence
	$(GO) build -tags $(GOTAGS) -ldflags "$(LDFLAGS)" -o $(BIN)/ramctrl ./cmd/ramctrl
	$(BIN)/ramctrl completion bash > $(BIN)/ramctrl.bash

consul:
	$(CONSUL_SH)

# The Nomad agent v1.6.2 (patched api module, see the script) for the job specs' end-to-end
# test; not part of deps, as only `make test-nomad` needs it.
nomad:
	nice -n 10 $(NOMAD_SH)

# etcd and kube-apiserver (envtest's control plane) for the operator's tests, built once
# into the cache (about 10 minutes cold); prints the folder KUBEBUILDER_ASSETS points at.
k8s:
	$(K8S_SH)

# helm v4.3.2 for the operator chart's test (lint, template, server-side dry run); about 3
# minutes cold, once.
helm:
	$(HELM_SH)

# Installs only what is missing: PostgreSQL server binaries, a C compiler for -race, Consul,
# HAProxy and patronictl (compatibility tests), pgBackRest and Barman (backup tests), nftables
# (packet loss in the fault suite).
deps: consul k8s helm
	@missing=()
	ls $(PG_GLOB) >/dev/null 2>&1 || missing+=(postgresql)
	command -v gcc >/dev/null || missing+=(gcc libc6-dev)
	# The compatibility tests run the real HAProxy and patronictl against ramd.
	command -v haproxy >/dev/null || missing+=(haproxy)
	command -v patronictl >/dev/null || missing+=(patroni)
	(cd / && /usr/bin/python3 -c 'import consul.base') 2>/dev/null || missing+=(python3-consul)
	# The backup tests run the real pgBackRest and Barman (local repository, no SSH).
	command -v pgbackrest >/dev/null || missing+=(pgbackrest)
	command -v barman >/dev/null || missing+=(barman)
	command -v barman-wal-restore >/dev/null || missing+=(barman-cli)
	# The fault suite drops a share of a host's packets with nftables (the kernel may lack netem).
	command -v nft >/dev/null || missing+=(nftables)
	if [ "$${#missing[@]}" -gt 0 ]; then
	  sudo=(); [ "$$(id -u)" -eq 0 ] || sudo=(sudo)
	  before="$$(pg_lsclusters -h 2>/dev/null || true)"
	  echo "deps: installing $${missing[*]}"
	  "$${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
	  "$${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$${missing[@]}"
	  # Drop the default cluster the package may have created and started (it holds port 5432).
	  if command -v pg_lsclusters >/dev/null && command -v pg_dropcluster >/dev/null; then
	    pg_lsclusters -h | while read -r ver name _; do
	      grep -qE "^$$ver +$$name " <<<"$$before" && continue
	      echo "deps: dropping the default cluster $$ver/$$name the package created"
	      "$${sudo[@]}" pg_dropcluster --stop "$$ver" "$$name" || echo "deps: warning: could not drop $$ver/$$name"
	    done
	  fi
	fi
	initdb="$$(ls -d $(PG_GLOB) 2>/dev/null | sort -V | tail -n 1 || true)"
	[ -n "$$initdb" ] || { echo "deps: no $(PG_GLOB) found" >&2; exit 1; }
	echo "deps: PostgreSQL server in $$(dirname "$$initdb")"

test: deps
	$(USE_CONSUL)
	$(GO) test -race -count=1 -timeout 25m ./...
	# nomad/ is a module of its own (Nomad's parser and its replaces stay out of ramd's build).
	(cd nomad && $(GO) test -race -count=1 -timeout 10m ./...)
	# operator/ too (the Kubernetes modules): its tests run against a real etcd and
	# kube-apiserver (envtest) and must not skip here. Without -race: compiling the Kubernetes
	# modules with it costs minutes on a cold cache (make test-operator RACE=-race for it).
	(export KUBEBUILDER_ASSETS="$$($(K8S_SH))" RAMD_HELM_BIN="$$($(HELM_SH))" RAMD_TEST_REQUIRE_REAL=1 RAMD_TEST_REQUIRE_HELM=1 \
	  && cd operator && $(GO) test -count=1 -timeout 10m ./...)
	# Every fuzz target past its seed corpus, briefly (make chaos: longer).
	FUZZTIME=5s GO=$(GO) scripts/fuzz.sh

# Every Go fuzz target (API request bodies, Consul records, the HA decision, ...) for
# FUZZTIME each.
FUZZTIME ?= 30s
fuzz:
	FUZZTIME=$(FUZZTIME) GO=$(GO) scripts/fuzz.sh

# The job specs under a real Nomad v1.6.2 agent beside a Consul agent: three members with
# raw_exec on loopback, failover on `nomad alloc stop`, a rolling update. A few minutes.
test-nomad: deps nomad
	$(USE_CONSUL)
	export RAMD_NOMAD_BIN="$${RAMD_NOMAD_BIN:-$$($(NOMAD_SH))}"
	cd nomad && $(GO) test -tags e2e -run E2E -count=1 -v -timeout 20m ./...

# The operator's tests alone (envtest control plane from the cache; Consul for the end-to-end
# test, which runs real ramd and PostgreSQL processes for the pods).
test-operator: consul k8s helm
	$(USE_CONSUL)
	export KUBEBUILDER_ASSETS="$$($(K8S_SH))" RAMD_HELM_BIN="$$($(HELM_SH))" RAMD_TEST_REQUIRE_REAL=1 RAMD_TEST_REQUIRE_HELM=1
	cd operator && $(GO) test $(RACE) -count=1 -timeout 10m ./...

# Regenerates the operator's deepcopy code, CRD and ClusterRole from the Go types' and the
# reconciler's markers (controller-gen v0.23.0, a tool of operator/go.mod) straight into the
# Helm chart, the one copy the tests and the chart share; the output is committed. It also
# copies the Grafana dashboard the operator embeds (go:embed stays inside operator/).
operator-generate:
	cp docs/grafana/ramd-dashboard.json operator/internal/controller/grafana/ramd-dashboard.json
	cd operator
	$(GO) tool controller-gen object paths=./api/... crd:crdVersions=v1 output:crd:dir=charts/ramd-operator/crds
	$(GO) tool controller-gen rbac:roleName=ramd-operator paths=./internal/... output:rbac:dir=charts/ramd-operator/templates

bench: deps
	$(USE_CONSUL)
	$(GO) test -run '^$$' -bench . -benchtime 1x -timeout 60m ./test/...

# The network fault scenarios of test/faults (root and network namespaces) run
# RAMD_CHAOS_RUNS times each with random phases, on asynchronous and synchronous clusters
# (RAMD_CHAOS_CLUSTERS of each, default 2, all at once), and print a table per mode.
RAMD_CHAOS_RUNS ?= 20
chaos: deps
	$(USE_CONSUL)
	$(GO) test -tags chaos -run Chaos -skip TestChaosFaults -timeout 90m ./test/...
	RAMD_CHAOS_RUNS=$(RAMD_CHAOS_RUNS) $(GO) test -tags chaos -run TestChaosFaults -count=1 -v -timeout 180m ./test/faults/ \
		| grep -v -e '^=== '
	FUZZTIME=2m GO=$(GO) scripts/fuzz.sh

lint:
	# golangci-lint (pinned, built once into the cache) with .golangci.yml: vet, staticcheck,
	# errcheck, errorlint, contextcheck, bodyclose, thelper, tparallel, gocognit, depguard (the
	# import rules, also kept by test/arch in `make test`).
	lint="$$(scripts/build-golangci-lint.sh)"
	"$$lint" run ./...
	(cd nomad && $(GO) vet -tags e2e ./...)
	(cd operator && $(GO) vet ./... && $(GO) mod tidy -diff)
	# go.mod and go.sum list exactly what the code imports.
	$(GO) mod tidy -diff

demo: build deps
	scripts/demo.sh

clean:
	rm -rf $(BIN)
