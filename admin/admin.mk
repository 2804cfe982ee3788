# The admin endpoint's targets; the top Makefile includes this file.
#
#   make browser-deps   installs headless Chromium (Debian's chromium
#                       package), which the status page test in admin/
#                       drives; `make test` depends on it
#   make test-admin     just the admin and cmd tests, race detector on
#
# CHROMIUM=/path/to/chromium makes the test use another browser binary.

CHROMIUM ?= /usr/bin/chromium

.PHONY: browser-deps test-admin

browser-deps:
	@if test -x "$(CHROMIUM)"; then \
	  echo "chromium is installed: $$($(CHROMIUM) --version 2>/dev/null || echo $(CHROMIUM))"; \
	else \
	  SUDO=$$(test "$$(id -u)" = 0 || echo sudo); \
	  $$SUDO apt-get update && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y chromium; \
	fi

test-admin: browser-deps
	CHROMIUM=$(CHROMIUM) $(GO) test -race -count=1 -timeout 3m ./admin/... ./cmd/...
