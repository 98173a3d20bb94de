# Image URL to use all building/pushing image targets
IMG ?= controller:latest
# YEAR defines the year value used for substituting the YEAR placeholder in the boilerplate header.
YEAR ?= $(shell date +%Y)

# Get the currently used golang install path (in GOPATH/bin, unless GOBIN is set)
ifeq (,$(shell go env GOBIN))
GOBIN=$(shell go env GOPATH)/bin
else
GOBIN=$(shell go env GOBIN)
endif

# CONTAINER_TOOL defines the container tool to be used for building images.
# Be aware that the target commands are only tested with Docker which is
# scaffolded by default. However, you might want to replace it to use other
# tools. (i.e. podman)
CONTAINER_TOOL ?= docker

# Setting SHELL to bash allows bash commands to be executed by recipes.
# Options are set to exit when a recipe line exits non-zero or a piped command fails.
SHELL = /usr/bin/env bash -o pipefail
.SHELLFLAGS = -ec

.PHONY: all
all: build

##@ General

# The help target prints out all targets with their descriptions organized
# beneath their categories. The categories are represented by '##@' and the
# target descriptions by '##'. The awk command is responsible for reading the
# entire set of makefiles included in this invocation, looking for lines of the
# file as xyz: ## something, and then pretty-format the target and help. Then,
# if there's a line with ##@ something, that gets pretty-printed as a category.
# More info on the usage of ANSI control characters for terminal formatting:
# https://en.wikipedia.org/wiki/ANSI_escape_code#SGR_parameters
# More info on the awk command:
# http://linuxcommand.org/lc3_adv_awk.php

.PHONY: help
help: ## Display this help.
	@awk 'BEGIN {FS = ":.*##"; printf "\nUsage:\n  make \033[36m<target>\033[0m\n"} /^[a-zA-Z_0-9-]+:.*?##/ { printf "  \033[36m%-15s\033[0m %s\n", $$1, $$2 } /^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) } ' $(MAKEFILE_LIST)

##@ Development

.PHONY: manifests
manifests: controller-gen ## Generate WebhookConfiguration, ClusterRole and CustomResourceDefinition objects.
	"$(CONTROLLER_GEN)" rbac:roleName=manager-role crd webhook paths="./..." output:crd:artifacts:config=config/crd/bases

.PHONY: generate
generate: controller-gen ## Generate code containing DeepCopy, DeepCopyInto, and DeepCopyObject method implementations.
	"$(CONTROLLER_GEN)" object:headerFile="hack/boilerplate.go.txt",year=$(YEAR) paths="./..."

.PHONY: fmt
fmt: ## Run go fmt against code.
	go fmt ./...

.PHONY: vet
vet: ## Run go vet against code.
	go vet ./...

.PHONY: test
test: manifests generate fmt vet envtest-assets test-deps install-helm ## Run unit and envtest suites, the backup scripts against PostgreSQL, the alerts against Prometheus and the Helm chart.
	eval "$$(hack/install-postgres.sh)" && \
	KUBEBUILDER_ASSETS="$$(hack/install-controlplane.sh envtest)" HELM="$(HELM)" \
	go test $$(go list ./... | grep -v /test/e2e) -coverprofile cover.out

.PHONY: test-deps
test-deps: ## Install PostgreSQL and Prometheus from Debian's packages for the tests (skipped when present).
	@hack/install-prometheus.sh
	@hack/install-postgres.sh >/dev/null

.PHONY: bench
bench: bench-go bench-cluster ## Run every benchmark: the Go benchmarks, then the operator at scale on a local kwok cluster.

.PHONY: bench-go
bench-go: envtest-assets test-deps ## Run the Go benchmarks (backup throughput among them).
	eval "$$(hack/install-postgres.sh)" && \
	KUBEBUILDER_ASSETS="$$(hack/install-controlplane.sh envtest)" \
	go test -run '^$$' -bench . -benchtime 1x $$(go list ./... | grep -v /test/e2e)

# Both make their own kwok cluster (softfactory-bench-<profile>) and remove it; results
# go to .cache/bench/<profile>/ (docs/benchmarks.md).
.PHONY: bench-cluster
bench-cluster: cluster-assets ## Benchmark the operator at scale on a local kwok cluster: up to 1,000 releases and unrelated load (~45 min; not in CI).
	@hack/bench.sh full

.PHONY: bench-smoke
bench-smoke: cluster-assets ## A small run of the cluster benchmark (20 releases, a few minutes; CI runs it): fails if a settled release costs an API write.
	@hack/bench.sh smoke

.PHONY: envtest-assets
envtest-assets: ## Build kube-apiserver and etcd from the Go module proxy into the per-user cache (skipped when present).
	@hack/install-controlplane.sh envtest >/dev/null

.PHONY: cluster-assets
cluster-assets: ## Build every control plane binary the local kwok cluster needs (skipped when present).
	@hack/install-controlplane.sh cluster >/dev/null

.PHONY: lint
lint: golangci-lint ## Run golangci-lint linter
	"$(GOLANGCI_LINT)" run

.PHONY: lint-fix
lint-fix: golangci-lint ## Run golangci-lint linter and perform fixes
	"$(GOLANGCI_LINT)" run --fix

.PHONY: lint-config
lint-config: golangci-lint ## Verify golangci-lint linter configuration
	"$(GOLANGCI_LINT)" config verify

##@ Local cluster, demo and end-to-end tests (docs/local-cluster.md)

.PHONY: cluster-up
cluster-up: ## Start the local kwok cluster (or reuse it) and print its kubeconfig path.
	@hack/cluster-up.sh

.PHONY: cluster-down
cluster-down: ## Remove the local kwok cluster.
	@hack/cluster-down.sh

.PHONY: demo
demo: ## Local cluster + operator; release the sample, then a new image, and watch. Stays up until demo-down.
	@hack/demo.sh up

.PHONY: demo-down
demo-down: ## Stop the demo's operator and remove its cluster.
	@hack/demo.sh down

# The suite makes its own cluster (softfactory-e2e, beside the demo's) and removes it;
# the cluster-down after it also covers a run killed before its AfterSuite. Neither
# happens with E2E_KEEP_CLUSTER (kept for a look) or E2E_KUBECONFIG (not the suite's).
.PHONY: test-e2e
test-e2e: cluster-assets ## Run the end-to-end suite (test/e2e) against its own local kwok cluster.
	@rc=0; go test -tags e2e ./test/e2e -v -count=1 -timeout 20m -ginkgo.v || rc=$$?; \
	if [ -z "$$E2E_KEEP_CLUSTER$$E2E_KUBECONFIG" ]; then hack/cluster-down.sh softfactory-e2e 2>/dev/null; fi; \
	exit $$rc

##@ Build

.PHONY: build
build: manifests generate fmt vet ## Build manager binary.
	go build -o bin/manager cmd/main.go

.PHONY: install-plugin
install-plugin: ## Build kubectl-sfrelease into GOBIN so `kubectl sfrelease` finds it.
	go build -o "$(GOBIN)/kubectl-sfrelease" ./cmd/kubectl-sfrelease

.PHONY: run
run: manifests generate fmt vet ## Run a controller from your host.
	go run ./cmd/main.go

# If you wish to build the manager image targeting other platforms you can use the --platform flag.
# (i.e. docker build --platform linux/arm64). However, you must enable docker buildKit for it.
# More info: https://docs.docker.com/develop/develop-images/build_enhancements/
# Override BASE_IMAGE to build from another registry, e.g.
# make docker-build IMG=<img> BASE_IMAGE=docker.io/library/golang:1.26
.PHONY: docker-build
docker-build: ## Build docker image with the manager.
	$(CONTAINER_TOOL) build $(if $(BASE_IMAGE),--build-arg BASE_IMAGE=$(BASE_IMAGE)) -t ${IMG} .

.PHONY: docker-push
docker-push: ## Push docker image with the manager.
	$(CONTAINER_TOOL) push ${IMG}

# PLATFORMS defines the target platforms for the manager image be built to provide support to multiple
# architectures. (i.e. make docker-buildx IMG=myregistry/mypoperator:0.0.1). To use this option you need to:
# - be able to use docker buildx. More info: https://docs.docker.com/build/buildx/
# - have enabled BuildKit. More info: https://docs.docker.com/develop/develop-images/build_enhancements/
# - be able to push the image to your registry (i.e. if you do not set a valid value via IMG=<myregistry/image:<tag>> then the export will fail)
# To adequately provide solutions that are compatible with multiple platforms, you should consider using this option.
PLATFORMS ?= linux/arm64,linux/amd64,linux/s390x,linux/ppc64le
.PHONY: docker-buildx
docker-buildx: ## Build and push docker image for the manager for cross-platform support
	# copy existing Dockerfile and insert --platform=${BUILDPLATFORM} into Dockerfile.cross, and preserve the original Dockerfile
	sed -e '1 s/\(^FROM\)/FROM --platform=\$$\{BUILDPLATFORM\}/; t' -e ' 1,// s//FROM --platform=\$$\{BUILDPLATFORM\}/' Dockerfile > Dockerfile.cross
	- $(CONTAINER_TOOL) buildx create --name release-operator-builder
	$(CONTAINER_TOOL) buildx use release-operator-builder
	- $(CONTAINER_TOOL) buildx build --push --platform=$(PLATFORMS) $(if $(BASE_IMAGE),--build-arg BASE_IMAGE=$(BASE_IMAGE)) --tag ${IMG} -f Dockerfile.cross .
	- $(CONTAINER_TOOL) buildx rm release-operator-builder
	rm Dockerfile.cross

.PHONY: build-installer
build-installer: manifests generate kustomize ## Generate a consolidated YAML with CRDs and deployment.
	mkdir -p dist
	cd config/manager && "$(KUSTOMIZE)" edit set image controller=${IMG}
	"$(KUSTOMIZE)" build config/default > dist/install.yaml

##@ Deployment

ifndef ignore-not-found
  ignore-not-found = false
endif

.PHONY: install
install: manifests kustomize ## Install CRDs into the K8s cluster specified in ~/.kube/config.
	@out="$$( "$(KUSTOMIZE)" build config/crd 2>/dev/null || true )"; \
	if [ -n "$$out" ]; then echo "$$out" | "$(KUBECTL)" apply -f -; else echo "No CRDs to install; skipping."; fi

.PHONY: uninstall
uninstall: manifests kustomize ## Uninstall CRDs from the K8s cluster specified in ~/.kube/config. Call with ignore-not-found=true to ignore resource not found errors during deletion.
	@out="$$( "$(KUSTOMIZE)" build config/crd 2>/dev/null || true )"; \
	if [ -n "$$out" ]; then echo "$$out" | "$(KUBECTL)" delete --ignore-not-found=$(ignore-not-found) -f -; else echo "No CRDs to delete; skipping."; fi

.PHONY: deploy
deploy: manifests kustomize ## Deploy controller to the K8s cluster specified in ~/.kube/config.
	cd config/manager && "$(KUSTOMIZE)" edit set image controller=${IMG}
	"$(KUSTOMIZE)" build config/default | "$(KUBECTL)" apply -f -

.PHONY: undeploy
undeploy: kustomize ## Undeploy controller from the K8s cluster specified in ~/.kube/config. Call with ignore-not-found=true to ignore resource not found errors during deletion.
	"$(KUSTOMIZE)" build config/default | "$(KUBECTL)" delete --ignore-not-found=$(ignore-not-found) -f -

##@ Dependencies

## Location to install dependencies to
LOCALBIN ?= $(shell pwd)/bin
$(LOCALBIN):
	mkdir -p "$(LOCALBIN)"

## Tool Binaries
KUBECTL ?= $(shell hack/install-controlplane.sh cluster 2>/dev/null)/kubectl
KUSTOMIZE ?= $(LOCALBIN)/kustomize
CONTROLLER_GEN ?= $(LOCALBIN)/controller-gen
GOLANGCI_LINT = $(LOCALBIN)/golangci-lint

## Tool Versions
KUSTOMIZE_VERSION ?= v5.8.1
CONTROLLER_TOOLS_VERSION ?= v0.23.0

GOLANGCI_LINT_VERSION ?= v2.13.1
.PHONY: kustomize
kustomize: $(KUSTOMIZE) ## Download kustomize locally if necessary.
$(KUSTOMIZE): $(LOCALBIN)
	$(call go-install-tool,$(KUSTOMIZE),sigs.k8s.io/kustomize/kustomize/v5,$(KUSTOMIZE_VERSION))

.PHONY: controller-gen
controller-gen: $(CONTROLLER_GEN) ## Download controller-gen locally if necessary.
$(CONTROLLER_GEN): $(LOCALBIN)
	$(call go-install-tool,$(CONTROLLER_GEN),sigs.k8s.io/controller-tools/cmd/controller-gen,$(CONTROLLER_TOOLS_VERSION))

.PHONY: golangci-lint
golangci-lint: $(GOLANGCI_LINT) ## Download golangci-lint locally if necessary.
$(GOLANGCI_LINT): $(LOCALBIN)
	$(call go-install-tool,$(GOLANGCI_LINT),github.com/golangci/golangci-lint/v2/cmd/golangci-lint,$(GOLANGCI_LINT_VERSION))
	@test -f .custom-gcl.yml && { \
		echo "Building custom golangci-lint with plugins..." && \
		$(GOLANGCI_LINT) custom --destination $(LOCALBIN) --name golangci-lint-custom && \
		mv -f $(LOCALBIN)/golangci-lint-custom $(GOLANGCI_LINT); \
	} || true

# go-install-tool will 'go install' any package with custom target and name of binary, if it doesn't exist
# $1 - target path with name of binary
# $2 - package url which can be installed
# $3 - specific version of package
define go-install-tool
@[ -f "$(1)-$(3)" ] && [ "$$(readlink -- "$(1)" 2>/dev/null)" = "$(1)-$(3)" ] || { \
set -e; \
package=$(2)@$(3) ;\
echo "Downloading $${package}" ;\
rm -f "$(1)" ;\
GOBIN="$(LOCALBIN)" go install $${package} ;\
mv "$(LOCALBIN)/$$(basename "$(1)")" "$(1)-$(3)" ;\
} ;\
ln -sf "$$(realpath "$(1)-$(3)")" "$(1)"
endef

define gomodver
$(shell go list -m -f '{{if .Replace}}{{.Replace.Version}}{{else}}{{.Version}}{{end}}' $(1) 2>/dev/null)
endef

##@ Helm Deployment

## Helm binary: built from the Go module proxy (hack/helm), never downloaded
HELM ?= $(LOCALBIN)/helm
## Namespace to deploy the Helm release
HELM_NAMESPACE ?= release-operator-system
## Name of the Helm release
HELM_RELEASE ?= release-operator
## Path to the Helm chart directory
HELM_CHART_DIR ?= dist/chart
## Additional arguments to pass to helm commands
HELM_EXTRA_ARGS ?=

.PHONY: install-helm
install-helm: $(LOCALBIN) ## Build helm from the Go module proxy into bin/ (skipped when present).
	@[ -x "$(HELM)" ] || { echo "Building helm (hack/helm)..."; cd hack/helm && go build -o "$(HELM)" helm.sh/helm/v3/cmd/helm; }

.PHONY: test-chart
test-chart: install-helm ## Render dist/chart with helm template and check what it makes.
	HELM="$(HELM)" go test ./test/chart/ -count=1

.PHONY: helm-deploy
helm-deploy: install-helm ## Deploy manager to the K8s cluster via Helm. Specify an image with IMG.
	IMG="$(IMG)"; $(HELM) upgrade --install $(HELM_RELEASE) $(HELM_CHART_DIR) \
		--namespace $(HELM_NAMESPACE) \
		--create-namespace \
		--set manager.image.repository=$${IMG%:*} \
		--set manager.image.tag=$${IMG##*:} \
		--wait \
		--timeout 5m \
		$(HELM_EXTRA_ARGS)

.PHONY: helm-uninstall
helm-uninstall: ## Uninstall the Helm release from the K8s cluster.
	$(HELM) uninstall $(HELM_RELEASE) --namespace $(HELM_NAMESPACE)

.PHONY: helm-status
helm-status: ## Show Helm release status.
	$(HELM) status $(HELM_RELEASE) --namespace $(HELM_NAMESPACE)

.PHONY: helm-history
helm-history: ## Show Helm release history.
	$(HELM) history $(HELM_RELEASE) --namespace $(HELM_NAMESPACE)

.PHONY: helm-rollback
helm-rollback: ## Rollback to previous Helm release.
	$(HELM) rollback $(HELM_RELEASE) --namespace $(HELM_NAMESPACE)

##@ Real cluster: real kubelet, containerd and the sample app (docs/real-cluster.md; root)

.PHONY: real-assets
real-assets: ## Install containerd, runc, CNI plugins & co from Debian, build kubelet and kube-proxy and the images (each skipped when present).
	@hack/real/install-deps.sh
	@hack/install-controlplane.sh real >/dev/null
	@hack/real/images.sh >/dev/null

.PHONY: test-real
test-real: real-assets ## Run the real-cluster suite (test/real) on its own cluster in a network namespace, then remove it.
	@hack/real/test.sh

.PHONY: demo-real
demo-real: real-assets ## Real cluster + operator + the sample app and PostgreSQL: two releases under load, numbers at the end.
	@hack/real/demo.sh up

.PHONY: demo-real-down
demo-real-down: ## Stop the real demo's operator and remove its cluster.
	@hack/real/demo.sh down
