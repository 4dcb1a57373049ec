# Signet: a container registry that admits content only as signed, digest-verified
# manifests. `make run` starts the stack on embedded defaults (DATA, REGISTRY_ADDR
# and TRUSTD_ADDR move it); `make test` runs every test, as CI does.

GO       ?= go
DATA     ?= ./data
REGISTRY_ADDR ?= 127.0.0.1:5000
TRUSTD_ADDR   ?= 127.0.0.1:5001
CMDS     := registry trustd trustctl notation-signet
# What `--version` prints: stamped in at link time, as builds run without VCS
# stamping (-buildvcs=false).
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo devel)
COMMIT   ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
LDFLAGS  := -X github.com/signet-oss/signet/internal/version.Version=$(VERSION) -X github.com/signet-oss/signet/internal/version.Commit=$(COMMIT)

.PHONY: build run test test-unit test-e2e bench layers fmt-check vet clean

build:
	@mkdir -p bin
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/ $(addprefix ./cmd/,$(CMDS))

run: build
	bin/trustctl up --data $(DATA) --registry-addr $(REGISTRY_ADDR) --trustd-addr $(TRUSTD_ADDR)

# Every test: static checks, unit tests with the race detector, then the end-to-end
# suites that drive the built binaries with real clients (installed on first use
# into a cache outside the checkout, ~/.cache/signet/tools).
test: fmt-check vet test-unit test-e2e

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

test-unit:
	$(GO) test -race -count=1 -timeout 10m $$($(GO) list ./... | grep -v /e2e)

test-e2e:
	$(GO) test -count=1 -timeout 25m ./e2e/...

# Signet against the reference registry (CNCF Distribution v3.1.2), same machine,
# same run.
bench:
	$(GO) run ./cmd/signet-bench

# Which part imports which (ARCHITECTURE.md §1); internal/archtest checks the rules.
layers:
	@scripts/layers.sh

clean:
	rm -rf bin
