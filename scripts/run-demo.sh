#!/usr/bin/env bash
# Starts three echo backends and the gateway in front of them, in the
# foreground; Ctrl-C (or SIGTERM) stops all four. Used by `make run`.
# Environment: LISTEN (gateway, 127.0.0.1:8080), ADMIN (its admin endpoint,
# 127.0.0.1:8081), BACKEND_PORTS ("9001 9002 9003"), POOL_SIZE (30), TLS=1
# with TLS_LISTEN (127.0.0.1:8443) and TLS_DIR (.demo/tls).
set -euo pipefail
bin=${WSGATE_BIN:-bin/wsgate}
listen=${LISTEN:-127.0.0.1:8080}
ports=(${BACKEND_PORTS:-9001 9002 9003})
pids=()
# Children run in their own sessions (setsid), so Ctrl-C reaches only this
# script, which stops each of them once: the gateway first, so it can close
# its backend connections cleanly, then the backends.
cleanup() {
	trap - EXIT INT TERM
	if [ -n "${gw:-}" ]; then kill -TERM "$gw" 2>/dev/null || true; wait "$gw" 2>/dev/null || true; fi
	for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM
args=()
backend=(-listen) scheme=ws
if [ -n "${TLS:-}" ]; then
	# TLS=1: a throwaway CA and certificate (kept in .demo/tls while still
	# valid); the gateway also listens on wss://$TLS_LISTEN and dials the
	# backends over wss://, verified against that CA.
	tlsdir=${TLS_DIR:-.demo/tls}
	"${DEVCERT_BIN:-bin/devcert}" -dir "$tlsdir"
	backend=(-listen "" -tls-cert "$tlsdir/server.pem" -tls-key "$tlsdir/server-key.pem" -tls-listen) scheme=wss
	args+=(-tls-listen "${TLS_LISTEN:-127.0.0.1:8443}" -tls-cert "$tlsdir/server.pem" -tls-key "$tlsdir/server-key.pem"
		-backend-ca "$tlsdir/ca.pem")
fi
for port in "${ports[@]}"; do
	setsid "$bin" echo "${backend[@]}" "127.0.0.1:$port" -log-level warn &
	pids+=($!)
	args+=(-backend "$scheme://127.0.0.1:$port/")
done
admin=${ADMIN:-127.0.0.1:8081}
echo "demo: echo backends on $scheme://127.0.0.1:{${ports[*]}}; gateway on ws://$listen/${TLS:+ and wss://${TLS_LISTEN:-127.0.0.1:8443}/}; status page on http://$admin/ (Ctrl-C stops everything)"
setsid "$bin" -listen "$listen" "${args[@]}" -pool-size "${POOL_SIZE:-30}" -admin "$admin" &
gw=$!
wait "$gw" || true
