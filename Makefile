# wsgate: `make run` starts a demo, `make test` runs every test.
GO       ?= go
BIN      := bin
LISTEN   ?= 127.0.0.1:8080
FUZZTIME ?= 30s

.PHONY: all build run run-echo test pg-up vet fuzz bench-codec clean install

all: build

# The version `wsgate -version`, /healthz and wsgate_build_info report.
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo devel)
LDFLAGS  := -X github.com/wsgate/wsgate/internal/buildinfo.version=$(VERSION)

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/wsgate ./cmd/wsgate
	$(GO) build -o $(BIN)/devcert ./cmd/devcert

# The gateway on $(LISTEN) in front of three echo backends on
# $(BACKEND_PORTS), its admin endpoint (status page, metrics) on $(ADMIN);
# Ctrl-C stops all. TLS=1: also wss:// on $(TLS_LISTEN), backends over
# wss://, with a throwaway CA in .demo/tls (the script prints how to trust
# it). Other ports: make run LISTEN=127.0.0.1:18080 ADMIN=127.0.0.1:18081 BACKEND_PORTS='19001 19002 19003'
TLS_LISTEN    ?= 127.0.0.1:8443
ADMIN         ?= 127.0.0.1:8081
BACKEND_PORTS ?= 9001 9002 9003
run: build
	LISTEN=$(LISTEN) ADMIN=$(ADMIN) BACKEND_PORTS="$(BACKEND_PORTS)" TLS=$(TLS) TLS_LISTEN=$(TLS_LISTEN) \
	  WSGATE_BIN=$(BIN)/wsgate DEVCERT_BIN=$(BIN)/devcert scripts/run-demo.sh

# Just the endpoint in echo mode on $(LISTEN).
run-echo: build
	$(BIN)/wsgate echo -listen $(LISTEN)

# Every test, race detector on; the fuzz targets run their seed corpora.
# PostgreSQL (for the live-configuration tests) is started first.
test: vet pg-up browser-deps interop-deps
	WSGATE_TEST_PG="$$(scripts/pg-up.sh)" $(GO) test -race -count=1 -timeout 8m ./...

# The local PostgreSQL 15 cluster with the wsgate_test database.
pg-up:
	@scripts/pg-up.sh >/dev/null

vet:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

# Coverage-guided fuzzing of every parser (frames, handshakes, tokens,
# PROXY headers, the per-IP limiter), $(FUZZTIME) each.
FUZZPKGS := ./codec ./internal/jwtauth ./internal/proxyproto ./internal/iplimit
fuzz:
	@for p in $(FUZZPKGS); do \
	  for f in $$($(GO) test -list '^Fuzz' $$p | grep '^Fuzz'); do \
	    echo "== $$p $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$p || exit 1; \
	  done; \
	done

# Micro-benchmarks of the codec (frame header parse/encode, handshake).
bench-codec:
	$(GO) test -run '^$$' -bench . -benchmem ./codec

# The loadtest targets (bench, bench-deps, ...) live with the loadtest.
-include loadtest/loadtest.mk
# The admin endpoint's targets (browser-deps: Chromium for the status-page test).
-include admin/admin.mk
# The TLS interop tests' targets (interop-deps: the peers they drive).
-include internal/tlsinterop/interop.mk

# The service: binary, systemd unit, documentation, and an example
# configuration unless one exists (run as root; DESTDIR for packaging).
PREFIX ?= /usr/local
install: build
	install -D -m 0755 $(BIN)/wsgate $(DESTDIR)$(PREFIX)/bin/wsgate
	install -D -m 0644 deploy/wsgate.service $(DESTDIR)/etc/systemd/system/wsgate.service
	install -D -m 0644 -t $(DESTDIR)$(PREFIX)/share/doc/wsgate README.md docs/operations.md docs/config.md docs/design.md
	[ -e $(DESTDIR)/etc/wsgate/wsgate.yaml ] || install -D -m 0644 deploy/wsgate.yaml $(DESTDIR)/etc/wsgate/wsgate.yaml

clean:
	rm -rf $(BIN)
