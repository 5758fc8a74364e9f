# vscript — see README.md. Everything here runs as root (namespaces, mounts).
GO      ?= go
BIN     := bin/vscript
VERSION := $(shell git describe --always --dirty 2>/dev/null || echo dev)

.PHONY: all build deps lab test bench docs clean

all: build

build:
	$(GO) build -ldflags "-X vscript/cli.Version=$(VERSION)" -o $(BIN) ./cmd/vscript

# The host programs vscript builds on: the static busybox (built-in images,
# host tools) and iptables (NAT). Installed only when missing.
deps:
	@command -v busybox >/dev/null && [ -x /bin/busybox ] && command -v iptables >/dev/null || \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq busybox-static iptables; }

# The main job: a bundled lab, on the built-in images.
lab: deps build
	./$(BIN) scripts/hello.star

# The whole test suite: unit tests, builtins against a fake engine, and the
# testscript end-to-end labs.
test: deps
	$(GO) vet ./...
	$(GO) test -count=1 ./...

# Benchmarks: figures for the issues' performance goals.
bench: deps build
	$(GO) test -run '^$$' -bench . -benchtime 20x ./...

# docs/reference.md is generated from the builtins' own registrations.
docs: build
	./$(BIN) doc > docs/reference.md

clean:
	rm -rf bin
