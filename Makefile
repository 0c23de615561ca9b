# openelb-operator Makefile. Run `make help` for the targets.

SHELL := /usr/bin/env bash -o pipefail
.SHELLFLAGS := -ec

export PATH := $(PATH):/usr/local/go/bin
GO ?= go
export GOFLAGS ?= -buildvcs=false

VERSION ?= 0.1.0
IMG ?= ghcr.io/openelb/openelb-operator:v$(VERSION)
LDFLAGS := -s -w -X github.com/openelb/openelb-operator/internal/version.Version=$(VERSION) \
	-X github.com/openelb/openelb-operator/internal/version.Commit=$(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)

BIN := $(CURDIR)/bin
CONTROLLER_GEN := $(BIN)/controller-gen
CONTROLLER_GEN_VERSION := v0.19.0
KUBECTL := $(BIN)/kubectl
# kubectl v1.34.4 embeds kustomize v5.7.1, so `kubectl kustomize` is our kustomize.
KUSTOMIZE := $(KUBECTL) kustomize

# envtest assets: the control plane built into bin/ unless the caller set
# KUBEBUILDER_ASSETS (which then wins).
KUBEBUILDER_ASSETS ?= $(BIN)
export KUBEBUILDER_ASSETS

TEST_TIMEOUT ?= 25m

# OLM bundle and catalog (docs/design/0010-bundle.md). BUNDLE_CREATED_AT is
# the CSV's createdAt, fixed so that `make bundle` is reproducible: set it to
# the release date together with VERSION (and BUNDLE_REPLACES to the
# previous CSV once there is one).
BUNDLE_CREATED_AT ?= 2026-11-23T00:00:00Z
BUNDLE_CHANNELS ?= stable
BUNDLE_DEFAULT_CHANNEL ?= stable
BUNDLE_REPLACES ?=
OPENSHIFT_VERSIONS ?= v4.18
BUNDLE_IMG ?= ghcr.io/openelb/openelb-operator-bundle:v$(VERSION)
CATALOG_IMG ?= ghcr.io/openelb/openelb-operator-catalog:v$(VERSION)
OPM := $(BIN)/opm

.PHONY: all
all: build

##@ General

.PHONY: help
help: ## Show this help.
	@awk 'BEGIN {FS = ":.*##"; printf "\nUsage:\n  make \033[36m<target>\033[0m\n"} /^[a-zA-Z_0-9-]+:.*?##/ { printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2 } /^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) } ' $(MAKEFILE_LIST)

##@ Development

.PHONY: generate
generate: $(CONTROLLER_GEN) ## Generate deepcopy code (zz_generated.deepcopy.go).
	$(CONTROLLER_GEN) object:headerFile=hack/boilerplate.go.txt paths=./api/...

.PHONY: manifests
manifests: $(CONTROLLER_GEN) ## Generate CRDs, the operator's RBAC and the webhook manifests.
	$(CONTROLLER_GEN) crd paths=./api/... output:crd:artifacts:config=config/crd/bases
	$(CONTROLLER_GEN) rbac:roleName=openelb-operator paths=./controllers/operator/... output:rbac:artifacts:config=config/rbac
	$(CONTROLLER_GEN) webhook paths=./controllers/... paths=./internal/webhooks/... output:webhook:artifacts:config=config/webhook

.PHONY: fmt
fmt: ## Run gofmt.
	gofmt -l -w $$(git ls-files -co --exclude-standard -- '*.go')

.PHONY: vet
vet: ## Run go vet (all build tags used by tests).
	$(GO) vet ./...
	$(GO) vet -tags e2e ./...

.PHONY: verify
verify: generate manifests bundle catalog ## Fail when generated files (CRDs, RBAC, bundle, catalog), formatting or go.mod differ from a fresh generation.
	@test -z "$$(gofmt -l $$(git ls-files -co --exclude-standard -- '*.go'))" || { echo "gofmt needed:"; gofmt -l $$(git ls-files -co --exclude-standard -- '*.go'); exit 1; }
	@! grep -rn "”" api config --include=*.go --include=*.yaml || { echo "gofmt turned '' into ” in a kubebuilder marker: write CEL rules without ''"; exit 1; }
	$(GO) mod tidy
	cd hack/bundlecheck && $(GO) mod tidy
	@git add -N . >/dev/null 2>&1 || true
	@git diff --exit-code -- api config go.mod go.sum bundle bundle.Dockerfile catalog catalog.Dockerfile hack/bundlecheck/go.mod hack/bundlecheck/go.sum || { echo "generated files are stale: run 'make generate manifests bundle catalog' (and 'go mod tidy') and commit"; exit 1; }
	$(MAKE) vet

##@ Build

.PHONY: build
build: ## Build bin/openelb (one binary, three roles).
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/openelb ./cmd/openelb

.PHONY: docker-build
docker-build: ## Build the image (needs a container engine; not available on the CI machines).
	docker build --build-arg VERSION=$(VERSION) -t $(IMG) .

##@ Test

.PHONY: controlplane
controlplane: ## Build kube-apiserver, kubectl (v1.34.4) and etcd (v3.6.16) into bin/ (cached).
	hack/build-controlplane.sh

.PHONY: test
test: controlplane ## Run every test: unit, envtest (real kube-apiserver + etcd) and, as root, the network lab.
	$(MAKE) test-unit
	$(MAKE) test-e2e

.PHONY: test-unit
test-unit: controlplane ## Run unit and envtest suites (fuzz targets run on their committed corpus) and the offline OLM bundle and catalog check.
	@echo "envtest assets: KUBEBUILDER_ASSETS=$(KUBEBUILDER_ASSETS)"
	$(GO) test -timeout $(TEST_TIMEOUT) -count=1 ./...
	$(MAKE) test-bundle

# Mutation fuzzing is not part of `make test`: it explores new random inputs,
# so a run can fail on a new find at any time, and CI must give the same
# answer for the same commit. `go test ./...` replays every committed input
# (testdata/fuzz/<Target>/), including every failure found so far. Run this
# before changing a parser; commit each failing input it writes together with
# the fix. FUZZTIME is an execution count, not a duration: with a duration
# Go's fuzzer can fail with "context deadline exceeded" when time runs out
# while it minimizes an input.
FUZZTIME ?= 5000000x
.PHONY: fuzz
fuzz: ## Mutation-fuzz every parser (FUZZTIME executions per target, default 5000000x, about 2 min each); new failures land in testdata/fuzz/.
	@set -e; for t in FuzzParseRange FuzzParseAddrList FuzzParseNameList; do \
		$(GO) test -run '^$$' -fuzz "^$$t\$$" -fuzztime $(FUZZTIME) ./internal/ipam/; done
	$(GO) test -run '^$$' -fuzz '^FuzzServiceAnnotations$$' -fuzztime $(FUZZTIME) ./internal/ipam/kube/

.PHONY: test-bundle
test-bundle: opm ## Validate bundle/ and catalog/ offline: operator-framework validators, examples against the CRD schemas, descriptors, labels, opm validate (hack/bundlecheck).
	cd hack/bundlecheck && OPM=$(OPM) $(GO) test -timeout $(TEST_TIMEOUT) -count=1 ./...

.PHONY: test-e2e
test-e2e: controlplane ## Run the network-namespace lab scenarios (root; under CI=true a non-root run or a missing tool fails). LAB_KEEP=1 keeps run dirs.
	$(GO) test -tags e2e -timeout $(TEST_TIMEOUT) -count=1 -v ./test/e2e/...

.PHONY: bench-lab
bench-lab: controlplane ## Measure lab setup + teardown (root; see docs/performance.md).
	$(GO) test -tags e2e -run '^$$' -bench LabUpDown -benchtime 5x ./test/e2e/

.PHONY: bench-bgp
bench-bgp: build controlplane ## Measure BGP mode (root): 1,000 and 10,000 routes from one speaker into FRR, speaker RSS, SIGTERM/SIGKILL withdrawal x20 each (see docs/performance.md).
	$(GO) test -tags e2e -run '^$$' -bench BGP -benchtime 1x -count 1 -timeout 40m -v ./test/e2e/ | grep -v 'lab: started'
	$(GO) test -run '^$$' -bench Engine -benchtime 1x -count 1 ./speaker/bgp/

.PHONY: bench-vip
bench-vip: build controlplane ## Measure VIP mode (root): failover of a vip address, graceful and hard, at 1 s and 100 ms advertisement intervals, 20 runs each (see docs/performance.md).
	$(GO) test -tags e2e -run '^$$' -bench VIPFailover -benchtime 20x -count 1 -timeout 40m -v ./test/e2e/ | grep -v 'lab: started'

.PHONY: bench-layer2
bench-layer2: build controlplane ## Measure layer2 mode (root): failover SIGKILL/SIGTERM/link down x20 each, speakers with 1,000 addresses (RSS, CPU, API requests/min) (see docs/performance.md).
	$(GO) test -tags e2e -run '^$$' -bench Layer2Failover -benchtime 20x -count 1 -timeout 30m -v ./test/e2e/ | grep -v 'lab: started'
	$(GO) test -tags e2e -run '^$$' -bench Layer2Speaker1000 -benchtime 1x -count 1 -timeout 30m -v ./test/e2e/ | grep -v 'lab: started'
	$(GO) test -run '^$$' -bench 'Compute1000|Rank3' -benchmem -count 1 ./speaker/ ./internal/election/

BENCH_IPAM_N ?= 1000,10000
.PHONY: bench-ipam
bench-ipam: build controlplane ## Measure the controller (IPAM): 1,000 and 10,000 Services created at once and caught up after a start, 1,000 created at 50/s (time, p50/p99, API writes/Service, Events, RSS), allocator micro-benchmarks (see docs/performance.md).
	$(GO) run ./test/bench/ipam -openelb $(BIN)/openelb -n $(BENCH_IPAM_N)
	$(GO) run ./test/bench/ipam -openelb $(BIN)/openelb -n 1000 -scenarios steady -rate 50
	$(GO) test -run '^$$' -bench . -benchmem -count 1 ./internal/ipam/

.PHONY: bench-operator
bench-operator: build controlplane ## Measure the operator: spec change -> DaemonSet and deleted DaemonSet -> recreated (50 runs each), peak RSS (see docs/performance.md).
	OPENELB_BIN=$(BIN)/openelb $(GO) test -run '^$$' -bench Operator -benchtime 1x -count 1 -timeout 15m ./test/operator/bench/

##@ Run

.PHONY: lab
lab: build controlplane ## Main job (root): the whole system in a network-namespace lab with 3 nodes, a router and a client; Ctrl-C ends it, LAB_ONESHOT=1 at once.
	test/lab/packages.sh
	$(GO) build -o $(BIN)/lab ./test/lab/cmd/lab
	LAB_NO_BUILD=1 $(BIN)/lab demo

.PHONY: run
run: build controlplane ## Run the operator against $$KUBECONFIG, or against a local control plane from bin/ when none is configured.
	$(GO) build -o $(BIN)/localcluster ./hack/localcluster
	$(BIN)/localcluster -- $(BIN)/openelb operator --log-format=console --metrics-bind-address=0 --health-probe-bind-address=:18081

##@ OLM bundle and catalog

.PHONY: bundle
bundle: manifests $(KUBECTL) ## Generate the OLM bundle (bundle/, bundle.Dockerfile) from config/ with hack/bundlegen (deterministic; committed).
	$(KUSTOMIZE) config/manifests | $(GO) run ./hack/bundlegen --version $(VERSION) --image $(IMG) \
		--created-at $(BUNDLE_CREATED_AT) --channels $(BUNDLE_CHANNELS) --default-channel $(BUNDLE_DEFAULT_CHANNEL) \
		--replaces '$(BUNDLE_REPLACES)' --openshift-versions '$(OPENSHIFT_VERSIONS)'

.PHONY: catalog
catalog: opm ## Render the file-based catalog (catalog/, catalog.Dockerfile) from bundle/ with opm and validate it (committed).
	OPM=$(OPM) PACKAGE=openelb-operator VERSION=$(VERSION) CHANNEL=$(BUNDLE_DEFAULT_CHANNEL) \
		BUNDLE_IMG=$(BUNDLE_IMG) REPLACES='$(BUNDLE_REPLACES)' hack/catalog.sh

.PHONY: bundle-build
bundle-build: ## Build the bundle image BUNDLE_IMG (needs a container engine).
	docker build -f bundle.Dockerfile -t $(BUNDLE_IMG) .

.PHONY: catalog-build
catalog-build: ## Build the catalog image CATALOG_IMG (needs a container engine).
	docker build -f catalog.Dockerfile -t $(CATALOG_IMG) .

##@ Deployment (clusters without OLM)

.PHONY: install
install: ## Install the CRDs into the cluster of $$KUBECONFIG.
	$(KUSTOMIZE) config/crd | $(KUBECTL) apply --server-side -f -

.PHONY: uninstall
uninstall: ## Remove the CRDs (and every Eip, BgpConf, BgpPeer) from the cluster.
	$(KUSTOMIZE) config/crd | $(KUBECTL) delete --ignore-not-found -f -

.PHONY: deploy
deploy: ## Deploy the operator with kustomize (config/default) using IMG.
	cd config/manager && $(KUBECTL) kustomize . >/dev/null
	$(KUSTOMIZE) config/default | sed 's|ghcr.io/openelb/openelb-operator:latest|$(IMG)|g' | $(KUBECTL) apply --server-side -f -

.PHONY: undeploy
undeploy: ## Remove the operator deployed by `make deploy`.
	$(KUSTOMIZE) config/default | $(KUBECTL) delete --ignore-not-found -f -

##@ Tools

$(CONTROLLER_GEN):
	GOBIN=$(BIN) $(GO) install sigs.k8s.io/controller-tools/cmd/controller-gen@$(CONTROLLER_GEN_VERSION)

$(KUBECTL):
	hack/build-controlplane.sh kubectl

.PHONY: opm
opm: ## Build opm v1.60.0 into bin/ (cached: not rebuilt when present).
	hack/build-opm.sh
