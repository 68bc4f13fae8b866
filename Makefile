# Rampart: the two set-up commands of the README are `make demo` and `make test`.
SHELL := /bin/bash
export PATH := $(PATH):/usr/local/go/bin:/root/go/bin
GO ?= go
PKG := github.com/rampart-edge/rampart
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
LDFLAGS := -X $(PKG)/internal/buildinfo.Version=$(VERSION) -X $(PKG)/internal/buildinfo.Commit=$(COMMIT)
FUZZTIME ?= 20s

# Debian packages the build, the tests, the demo and the benchmarks need.
APT_PACKAGES := clang llvm libbpf-dev bpftool iproute2 iputils-ping xdp-tools nftables tcpdump ethtool nginx haproxy wrk softhsm2

.PHONY: all build demo test deps check-generate generate vet race fuzz bench clean

all: build

## demo: build and run `rampart demo` (root: namespaces + XDP)
demo: deps build
	./bin/rampart demo

## test: everything CI runs: packages, generated-code check, vet, race tests, fuzzing
test: deps check-generate vet race fuzz

# The key server is built with BoringCrypto (cgo): it signs 1.5x faster than
# the standard library here, for ECDSA P-256 and RSA-2048 (docs/keyserver.md).
build:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/rampart ./cmd/rampart
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/rampartctl ./tools/rampartctl
	GOEXPERIMENT=boringcrypto CGO_ENABLED=1 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/rampart-keyserver ./cmd/rampart-keyserver

## deps: install missing Debian packages (idempotent) and Go modules
deps:
	@command -v $(GO) >/dev/null || { echo "Go 1.26 is required (expected in /usr/local/go/bin)"; exit 1; }
	@missing=""; for p in $(APT_PACKAGES); do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		if [ "$$(id -u)" -ne 0 ]; then echo "run as root to install:$$missing"; exit 1; fi; \
		DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi
	@if [ "$$(id -u)" -eq 0 ] && ! mountpoint -q /sys/fs/bpf; then mount -t bpf bpf /sys/fs/bpf; fi
	$(GO) mod download

generate:
	$(GO) generate ./...

## check-generate: regenerate the bpf2go output with clang and fail on any diff
check-generate: generate
	@if ! git diff --quiet -- '*_bpfel.go' '*_bpfel.o'; then \
		echo "generated BPF code differs from the committed one:"; git diff --stat -- '*_bpfel.go' '*_bpfel.o'; exit 1; \
	fi
	@if [ -n "$$(git status --porcelain --untracked-files=all -- '*_bpfel.go' '*_bpfel.o')" ]; then \
		echo "generated BPF files are not committed:"; git status --porcelain -- '*_bpfel.go' '*_bpfel.o'; exit 1; \
	fi

vet:
	$(GO) vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt:"; gofmt -l $$(git ls-files '*.go'); exit 1; }

race:
	$(GO) test -race -count=1 -timeout 20m ./...

## fuzz: run every fuzz target for FUZZTIME on its seed corpus
# Go 1.26's fuzz coordinator can report "context deadline exceeded" at the end
# of -fuzztime with no failing input (golang/go#75804, fixed in Go 1.27): such
# a run is reported and passed; any run that writes a failing input fails.
fuzz:
	@set -e; for pkg in $$($(GO) list ./...); do \
		for t in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
			echo "fuzz $$pkg $$t ($(FUZZTIME))"; \
			out=$$(mktemp); \
			if ! $(GO) test -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) $$pkg >$$out 2>&1; then \
				cat $$out; \
				if grep -q 'context deadline exceeded' $$out && ! grep -q 'Failing input written' $$out; then \
					echo "fuzz $$t: stopped by the fuzz coordinator's deadline race (golang/go#75804), no failing input"; \
				else rm -f $$out; exit 1; fi; \
			else tail -n 3 $$out; fi; \
			rm -f $$out; \
		done; \
	done

## bench: the XDP benchmark against its baselines (root)
bench: build
	./bin/rampart bench xdp

clean:
	rm -rf bin
