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

# The main job: the day-6 lesson (every exercise of the notes in one lab), on the
# built-in images.
lab: deps build
	./$(BIN) scripts/day6.star

# The whole test suite: unit tests, builtins against a fake engine, and the
# testscript end-to-end labs.
test: deps
	$(GO) vet ./...
	$(GO) test -count=1 ./...

# Benchmarks: a table of vscript's figures (median, min, max) beside the
# performance goals, and beside Docker's when a Docker engine answers.
# BENCHFLAGS: -n N (samples), -docker off, -rows REGEX; see docs/benchmarks.md.
bench: deps
	$(GO) run ./cmd/benchtable $(BENCHFLAGS)

# docs/reference.md is generated from the builtins' own registrations.
docs: build
	./$(BIN) doc > docs/reference.md

clean:
	rm -rf bin
