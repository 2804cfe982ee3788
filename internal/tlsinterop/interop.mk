# The TLS interop tests' targets; the top Makefile includes this file.
#
#   make interop-deps   installs what internal/tlsinterop drives, when it
#                       is missing: Chromium, Node.js with npm and the `ws`
#                       package (into $(INTEROP_CACHE)), Python 3 with
#                       python3-websockets, openssl; `make test` depends on it
#   make test-interop   just the interop and hostile-TLS tests, race detector on
#
# The tests skip a missing peer with the command to install it, and fail
# instead under CI=true.

INTEROP_CACHE ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/wsgate-interop
# Where the tests look for the npm packages, in every recipe (`make test` too).
export WSGATE_INTEROP_CACHE := $(INTEROP_CACHE)

.PHONY: interop-deps test-interop

interop-deps:
	@CHROMIUM="$(CHROMIUM)" scripts/interop-deps.sh

test-interop: interop-deps
	CHROMIUM="$(CHROMIUM)" $(GO) test -race -count=1 -timeout 3m ./internal/tlsinterop/
