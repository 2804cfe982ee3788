#!/usr/bin/env bash
# Installs what the TLS interop tests (internal/tlsinterop) drive, when it
# is missing: headless Chromium, Node.js with npm and the `ws` package,
# Python 3 with Debian's python3-websockets, and the openssl command.
# Idempotent, and quick when everything is there (no apt-get, no npm call).
# Needs root (or sudo) for apt-get.
#
# The `ws` package goes into $WSGATE_INTEROP_CACHE (default
# ${XDG_CACHE_HOME:-$HOME/.cache}/wsgate-interop), under node_modules;
# the tests look for it there.
set -euo pipefail

chromium=${CHROMIUM:-/usr/bin/chromium}
python=${WSGATE_INTEROP_PYTHON:-/usr/bin/python3}
cache=${WSGATE_INTEROP_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/wsgate-interop}
ws_version=8.23.1 # the version the tests were written against

missing=()
test -x "$chromium" || missing+=(chromium)
command -v openssl >/dev/null || missing+=(openssl)
command -v node >/dev/null || missing+=(nodejs)
# Debian's python3-websockets serves Debian's python3; a python3 earlier
# in PATH (pyenv, a venv) does not see it, so the tests run $python.
if ! { test -x "$python" && "$python" -c 'import websockets' 2>/dev/null; }; then
	missing+=(python3 python3-websockets)
fi

apt_install() {
	local sudo=""
	test "$(id -u)" = 0 || sudo=sudo
	echo "interop-deps: apt-get install $*" >&2
	$sudo apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$@" >/dev/null
}

if ((${#missing[@]})); then
	apt_install "${missing[@]}"
fi
# Debian's nodejs comes without npm (NodeSource's includes it).
command -v npm >/dev/null || apt_install npm

if ! test -f "$cache/node_modules/ws/package.json" ||
	[ "$(node -p "require('$cache/node_modules/ws/package.json').version" 2>/dev/null)" != "$ws_version" ]; then
	echo "interop-deps: npm install ws@$ws_version into $cache" >&2
	mkdir -p "$cache"
	npm install --prefix "$cache" --no-audit --no-fund --no-save --loglevel=error "ws@$ws_version" >/dev/null
fi

echo "interop deps: $("$chromium" --version 2>/dev/null | head -1);" \
	"node $(node --version), ws $(node -p "require('$cache/node_modules/ws/package.json').version");" \
	"$("$python" --version) websockets $("$python" -c 'import websockets; print(websockets.__version__)');" \
	"$(openssl version)"
