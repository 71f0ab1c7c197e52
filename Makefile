# Every habit is one command. `make test` is what CI runs.
GO      ?= go
PKGS    ?= ./...

.PHONY: test unit e2e interop lint bench fuzz demo build build-dev soak faults deploy-check release-snapshot image

test: lint ## vet, format check, and every test with the race detector
	$(GO) test -race -count=1 $(PKGS)

unit: ## tests without the end-to-end suite
	$(GO) test -race -count=1 $$($(GO) list ./... | grep -v /e2e)

e2e: ## end-to-end tests driving the real binary
	$(GO) test -race -count=1 ./e2e/

interop: ## TypeScript SDK OAuth flow + MCP conformance suite (needs: npm ci --prefix interop)
	$(GO) test -race -count=1 -run '^TestInterop' ./e2e/

lint: ## gofmt and go vet
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)

bench: ## benchmarks (numbers quoted in docs/development.md)
	$(GO) test -run='^$$' -bench=. -benchmem $(PKGS)

FUZZTIME ?= 30s

# Every parser of untrusted input has a fuzz target; `make fuzz` runs each
# for FUZZTIME (make fuzz FUZZTIME=10m for the long run).
FUZZ_TARGETS = \
	./internal/jobpath:FuzzParse \
	./internal/diagnose:FuzzDiagnose \
	./internal/jenkins:FuzzParseJenkinsJSON \
	./internal/jenkins:FuzzSearchLog \
	./internal/jenkins:FuzzConsolePages \
	./internal/config:FuzzParse \
	./internal/authn:FuzzVerify \
	./internal/authn:FuzzBearerToken \
	./internal/authn:FuzzChallenge \
	./internal/server:FuzzParseBody \
	./internal/authz:FuzzDecide \
	./internal/catalog:FuzzQuote \
	./internal/telemetry:FuzzExtract

fuzz: ## each fuzz target for FUZZTIME (30s)
	@for t in $(FUZZ_TARGETS); do pkg=$${t%%:*}; fn=$${t##*:}; \
		echo "== $$pkg $$fn"; \
		$(GO) test -run='^$$' -fuzz="^$$fn$$" -fuzztime=$(FUZZTIME) $$pkg || exit 1; done

soak: ## 50 concurrent clients for 5 minutes against butler serve (CI runs 60 s)
	BUTLER_SOAK_SECONDS=$${BUTLER_SOAK_SECONDS:-300} $(GO) test -race -count=1 -timeout 30m -run '^TestSoak$$' -v ./e2e/ | grep -v '^=== '

faults: ## take the IdP, Jenkins and Redis away under butler serve (stops and restarts the local Redis)
	BUTLER_FAULTS=1 $(GO) test -race -count=1 -p 1 -timeout 20m -run '^TestFault' -v ./e2e/ | grep -v '^=== '

demo: ## run the demo
	$(GO) run ./cmd/butler demo

build: ## build ./butler for production: without the demo, the Jenkins simulator and the dev IdP
	$(GO) build -tags nodemo -o butler ./cmd/butler

build-dev: ## build ./butler with the demo
	$(GO) build -o butler ./cmd/butler

deploy-check: ## build, render and check the release, image, Helm chart, systemd unit, dashboard and alerts (deploy/)
	$(GO) test -count=1 -v ./deploy/

release-snapshot: ## the full GoReleaser matrix (linux/darwin/windows x amd64/arm64) into dist/, unpublished
	PATH="$$(dirname "$$(bash tools/build.sh cyclonedx-gomod)"):$$PATH" "$$(bash tools/build.sh goreleaser)" release --snapshot --clean

image: ## the container image butler:dev (buildah; GO_IMAGE=... for another build image)
	buildah build -f deploy/container/Containerfile $(if $(GO_IMAGE),--build-arg GO_IMAGE=$(GO_IMAGE)) \
		--build-arg VERSION=$$(git describe --tags --always) --build-arg COMMIT=$$(git rev-parse HEAD) \
		--build-arg DATE=$$(git log -1 --format=%cI) -t butler:dev .
