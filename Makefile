# erpctl — see README.md. Every target that needs PostgreSQL installs the server binaries first
# when the machine has none (Debian's postgresql package, as root or with sudo); make test also
# installs Debian's chromium for the console's browser tests.

GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT  ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo none)
DATE    ?= $(shell date -u +%Y-%m-%dT%H:%M:%SZ)
LDFLAGS := -s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT) -X main.date=$(DATE)
LISTEN  ?= 127.0.0.1:8080
CONSOLE_LISTEN ?= 127.0.0.1:8081

.PHONY: all build run test bench soak postgres chromium fmt clean

all: build

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/erpctl ./cmd/erpctl

postgres:
	@scripts/ensure-postgres.sh

chromium:
	@scripts/ensure-chromium.sh

# The main job: the daemon with the data API over a demo tenant, on the embedded PostgreSQL.
run: postgres build
	@LISTEN=$(LISTEN) CONSOLE_LISTEN=$(CONSOLE_LISTEN) scripts/run-demo.sh

test: postgres chromium
	@test -z "$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))" || { gofmt -l .; echo "gofmt: files above need formatting"; exit 1; }
	$(GO) vet ./...
	$(GO) test -race -timeout 9m ./...

bench: postgres chromium build
	$(GO) run ./cmd/erpbench

# The daemon under steady traffic for SOAK_MINUTES (default 5); fails when its memory grows.
soak: postgres build
	$(GO) run ./cmd/erpbench soak

fmt:
	gofmt -w .

clean:
	rm -rf bin dist
