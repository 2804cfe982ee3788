# The loadtest's targets; the top Makefile includes this file.
#
#   make bench        builds bin/wsgate and bin/loadtest, runs the -compare
#                     scenarios (seed-table-scaled, density) against wsgate,
#                     the goroutine baseline, nginx and no proxy, and writes
#                     Markdown tables, JSON and SVG charts under bench-out/
#   make bench-deps   installs nginx (Debian), which the nginx runs need
#   make bench-one SCENARIO=echo-256 PROXY=wsgate   one scenario, one proxy
#
# BENCH_SCENARIOS picks the scenarios (e.g. BENCH_SCENARIOS=seed-table for
# the saturating 300K msg/s shape), BENCH_PROXIES the proxies, and
# BENCH_FLAGS adds flags to every run (e.g. BENCH_FLAGS='-duration 60s').

BENCH_OUT       ?= bench-out
BENCH_SCENARIOS ?= seed-table-scaled density
BENCH_PROXIES   ?= wsgate,goroutine,nginx,direct
BENCH_FLAGS     ?=
SCENARIO        ?= seed-table-scaled
PROXY           ?= wsgate

.PHONY: bench bench-deps bench-one loadtest

loadtest:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/wsgate ./cmd/wsgate
	$(GO) build -o $(BIN)/loadtest ./cmd/loadtest

# Each scenario runs even if the one before it reported a failure or a
# loss; the target fails at the end if any did.
bench: loadtest
	@mkdir -p $(BENCH_OUT)
	@command -v nginx >/dev/null 2>&1 || test -x /usr/sbin/nginx || \
	  echo "note: nginx is not installed; its runs will fail (make bench-deps installs it)"
	@status=0; for s in $(BENCH_SCENARIOS); do \
	  echo "== $$s"; \
	  $(BIN)/loadtest -scenario $$s -compare $(BENCH_PROXIES) \
	    -md $(BENCH_OUT)/$$s.md -json $(BENCH_OUT)/$$s.json -chart $(BENCH_OUT)/$$s.svg $(BENCH_FLAGS) || status=1; \
	done; \
	echo "tables, JSON and charts in $(BENCH_OUT)/"; exit $$status

bench-one: loadtest
	@mkdir -p $(BENCH_OUT)
	$(BIN)/loadtest -scenario $(SCENARIO) -proxy $(PROXY) \
	  -md $(BENCH_OUT)/$(SCENARIO)-$(PROXY).md -json $(BENCH_OUT)/$(SCENARIO)-$(PROXY).json \
	  -chart $(BENCH_OUT)/$(SCENARIO)-$(PROXY).svg $(BENCH_FLAGS)

# nginx-light is Debian's nginx with the proxy module and little else.
bench-deps:
	@if command -v nginx >/dev/null 2>&1 || test -x /usr/sbin/nginx; then \
	  echo "nginx is installed: $$(/usr/sbin/nginx -v 2>&1 || nginx -v 2>&1)"; \
	else \
	  SUDO=$$(test "$$(id -u)" = 0 || echo sudo); \
	  $$SUDO apt-get update && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y nginx-light; \
	fi
