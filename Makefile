# Strata's build. `make help` lists the targets.
SHELL := /usr/bin/env bash
.SHELLFLAGS := -eu -o pipefail -c

BIN := $(CURDIR)/bin
GO ?= go
# Everything builds without cgo, as the image's static binary must: the
# image test's build (internal/install/image) then reuses the packages that
# `make build`, lint and the tests compiled, instead of compiling every
# package a second time for CGO_ENABLED=0 (about six CPU-minutes of a cold
# run). Nothing in Strata or its dependencies needs cgo.
export CGO_ENABLED ?= 0
export KUBEBUILDER_ASSETS := $(BIN)
# Tests that need the local cluster binaries find them here.
export STRATA_BIN_DIR := $(BIN)

.PHONY: help
help: ## Show this help.
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

.PHONY: tools
tools: ## Build the local cluster binaries into bin/ (cached per version in ~/.cache/strata/tools).
	@test/tools/build.sh $(BIN)

# The groups every test run needs before it starts: the cluster (controller
# tests, strata up) and the Gateway API CRDs. controller-gen (make verify)
# and the sops CLI share most of their packages with Strata's own build
# (test/tools/align.sh), so `make test` builds them after it, when Go's build
# cache already holds those packages. The servers only some tests start
# (LATE_TOOLS) build beside the tests.
CORE_TOOLS := cluster gateway-api
SHARED_TOOLS := controller-gen sops
LATE_TOOLS := prometheus alertmanager versitygw vault

.PHONY: tools-core tools-shared
tools-core:
	@test/tools/build.sh $(BIN) $(CORE_TOOLS)
tools-shared:
	@test/tools/build.sh $(BIN) $(SHARED_TOOLS)

# Version stamping: every binary carries its version, commit and build date
# (strata version); the date is the commit's, so builds are reproducible.
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT ?= $(shell git rev-parse HEAD 2>/dev/null)
DATE ?= $(shell date -u -d @$$(git log -1 --format=%ct 2>/dev/null || date +%s) +%Y-%m-%dT%H:%M:%SZ)
CLI_PKG := github.com/strata-dev/strata/internal/cli
LDFLAGS := -X $(CLI_PKG).Version=$(VERSION) -X $(CLI_PKG).Commit=$(COMMIT) -X $(CLI_PKG).Date=$(DATE)
BUILD := $(CURDIR)/build
IMAGE ?= ghcr.io/strata-dev/strata:$(VERSION)
ARCH ?= amd64

.PHONY: build
build: ## Build bin/strata.
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/strata ./cmd/strata

.PHONY: image
image: ## Build the strata image (no daemon, no base image) into build/image/oci (OCI layout) and build/image/strata.tar.
	CGO_ENABLED=0 GOOS=linux GOARCH=$(ARCH) $(GO) build -ldflags "-s -w $(LDFLAGS)" -o $(BUILD)/strata-linux-$(ARCH) ./cmd/strata
	$(GO) run ./internal/install/image/cmd/strata-image --binary $(BUILD)/strata-linux-$(ARCH) --arch $(ARCH) \
		--version $(VERSION) --commit $(COMMIT) --date $(DATE) --ref $(IMAGE) --out $(BUILD)/image

.PHONY: run
run: tools build ## Build everything and start a local cluster with Strata (strata up).
	$(BIN)/strata up

.PHONY: generate
generate: ## Regenerate deepcopy code and CRD manifests from the API types.
	@test/tools/build.sh $(BIN) controller-gen
	$(BIN)/controller-gen object paths=./apis/... paths=./providers/... paths=./internal/managed/apis/...
	$(BIN)/controller-gen crd paths=./apis/... paths=./providers/... output:crd:artifacts:config=apis/crds

.PHONY: verify
verify: generate ## Fail when generated files are stale.
	@if [ -n "$$(git status --porcelain -- apis providers internal/managed/apis)" ]; then \
		echo "generated files are stale; run 'make generate' and commit:"; \
		git status --porcelain -- apis providers internal/managed/apis; exit 1; fi

.PHONY: lint
lint: ## go vet and gofmt.
	$(GO) vet ./...
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "not gofmt'ed:"; echo "$$out"; exit 1; fi

# The longest packages come first: `go test` starts packages in the order
# given (a package named again by ./... runs once), and one of them started
# late ran alone at the end of the run with a core idle. e2e is the longest;
# its tests run two clusters at a time (STRATA_E2E_PARALLEL), and a test that
# needs a server still building in the background (Vault, Prometheus) waits
# for it without holding a cluster slot, so the others run meanwhile. The
# gitops crash test and the CLI's come next: they need only the cluster, so
# on a cold machine they do not wait for the background build either.
TEST_PKGS := ./test/e2e ./internal/gitops/controller/crashtest ./internal/cli ./...

# Test packages run four at a time (go test's default is one per core): most
# of a controller test's time is spent waiting on its API server, and with
# two at a time on a two-core VM a warm run left the CPU 36% idle (18:33,
# vmstat every 15 s).
TEST_P ?= 4

.PHONY: test
# The LATE_TOOLS build in the background from the start, beside the cluster
# build, lint, verify and the tests (on a cold machine they are most of the
# build time; started only after the cluster they were the run's tail), at
# the lowest priority (nice 19): every test needs the cluster, which then
# builds almost as fast as alone, and the servers take the CPU the cluster's
# build and the tests leave idle. A test that needs one of them waits for its
# group (testenv.Tool, STRATA_TOOLS_WAIT=1). With a warm cache the
# background build only links. `go test` runs with -vet=off: lint has run
# the full `go vet ./...` on the same packages, test files included. Its test
# binaries are linked without symbol table and DWARF (-s -w; stack traces
# come from the pclntab all the same): about 1.5 CPU-seconds less per package
# on a slow two-core VM (internal/delivery/rollout: 5.8 s of CPU against 7.4).
test: ## Everything: unit, integration (real API server) and e2e tests.
	@mkdir -p build; echo "tools: building $(LATE_TOOLS) in the background (log: build/tools.log)"
	@start=$$(date +%s); nice -n 19 test/tools/build.sh $(BIN) $(LATE_TOOLS) >build/tools.log 2>&1 & bg=$$!; rc=0; \
	$(MAKE) --no-print-directory tools-core build lint verify tools-shared || rc=$$?; \
	echo "test: go test starts $$(( $$(date +%s) - start ))s into make test"; \
	if [ $$rc = 0 ]; then STRATA_TOOLS_WAIT=1 $(GO) test -count=1 -vet=off -ldflags='-s -w' -p $(TEST_P) -timeout 50m $(TEST_PKGS) || rc=$$?; fi; \
	echo "test: go test ended $$(( $$(date +%s) - start ))s into make test"; \
	if ! wait $$bg; then echo "tools: the background build failed:"; cat build/tools.log; rc=1; fi; \
	grep '^tools: built' build/tools.log || true; exit $$rc

.PHONY: bench
# Benchmarks time requests to Vault and Prometheus too: every tool is built
# optimized for them (test/tools/build.sh).
bench: export STRATA_TOOLS_OPTIMIZE := 1
bench: tools build ## Benchmarks against the local cluster (and kro, built here); results go to docs/benchmarks.md.
	@test/tools/build.sh $(BIN) kro
	$(GO) test -count=1 -p 1 -timeout 120m -run '^$$' -bench . ./test/bench/...

.PHONY: clean
clean: ## Remove bin/ and build/ (the tools cache in ~/.cache/strata stays).
	rm -rf $(BIN) $(BUILD)
