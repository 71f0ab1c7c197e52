# Every habit is one command. `make test` is what CI runs.
GO      ?= go
PKGS    ?= ./...

.PHONY: test unit e2e interop lint bench fuzz demo build build-dev

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

fuzz: ## each fuzz target for 30s
	$(GO) test -run='^$$' -fuzz=FuzzParse$$ -fuzztime=30s ./internal/jobpath/
	$(GO) test -run='^$$' -fuzz=FuzzParseJenkinsJSON -fuzztime=30s ./internal/jenkins/
	$(GO) test -run='^$$' -fuzz=FuzzParse$$ -fuzztime=30s ./internal/config/

demo: ## run the demo
	$(GO) run ./cmd/butler demo

build: ## build ./butler for production: without the demo, the Jenkins simulator and the dev IdP
	$(GO) build -tags nodemo -o butler ./cmd/butler

build-dev: ## build ./butler with the demo
	$(GO) build -o butler ./cmd/butler
