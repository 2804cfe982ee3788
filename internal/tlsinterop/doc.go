// Package tlsinterop is the acceptance suite of wsgate's TLS listener
// against real, independent peers and hostile TLS clients. It has only
// tests; nothing here is imported.
//
// Interop: each peer exchanges text and binary messages over wss:// with
// the endpoint (server.Echo behind a TLS listener configured the way
// -tls-cert and -tls-key configure it) and closes 1000; the server's
// counters are then checked exactly (handshakes, upgrades, closes by
// reason, frames, nothing failed, nothing left open):
//
//	TestChromium                 headless Chromium, driven over DevTools; the
//	                             certificate pinned with
//	                             --ignore-certificate-errors-spki-list, and a
//	                             server with another key refused (the control)
//	TestNodeWS                   Node's ws package, TLS 1.2 and 1.3, 1 MiB in
//	                             64 KiB fragments
//	TestNodeWSThroughGateway     the same through the gateway, TLS 1.3
//	TestPythonWebsockets         Python's websockets (Debian's
//	                             python3-websockets), TLS 1.2 and 1.3, a
//	                             fragmented message
//	TestGoClient                 crypto/tls with gorilla/websocket, TLS 1.2 and
//	                             1.3, with and without a session cache
//	                             (DidResume on the second connection only)
//	TestGoClientThroughGateway   the same through the gateway (-tls-listen in
//	                             front of an echo backend), resumed
//	TestOpenSSLClient            openssl s_client, TLS 1.2 and 1.3, a
//	                             hand-written upgrade and masked frames; New,
//	                             then Reused with -sess_out / -sess_in
//	TestChromiumSubprotocolThroughGateway
//	                             Chromium offering a subprotocol over wss://
//	                             through the gateway to a backend that
//	                             requires it: the 101 names what the backend
//	                             agreed to; offering none is refused (400)
//
// Hostile, one scenario at a time: TestHostileHandshakes (a server with a
// 1.5 s handshake timeout) sends garbage, a truncated ClientHello, a whole
// ClientHello then silence; TestHostileSessions (default timeouts) opens
// connections past the 4 handshake slots, sends oversized records after
// the handshake, renegotiates (openssl's R on TLS 1.2), updates keys
// (openssl's k and K on TLS 1.3), sends close_notify in the middle of a
// message. Each scenario requires that its connection ended, counted
// under its reason and nothing else; that the process's descriptors
// (/proc/self/fd) and goroutines (gnet's shared worker pool aside) came
// back to their baseline; and that the canary, an honest wss:// session
// on the same server, kept echoing throughout.
//
// TestCloseNotifyBeforeTCPClose requires close_notify before the server
// closes TCP, however a session ends (a close handshake either way, a
// protocol error, a refused upgrade; directly and through the gateway).
//
// TestMemoryAfterManySessions opens and closes 2,000 wss:// sessions and
// requires the live heap after a collection within 1 MiB of its baseline.
//
// The peers come from `make interop-deps` (scripts/interop-deps.sh):
// Debian's chromium, nodejs and npm, python3-websockets and openssl, and
// the ws package from npm into ${XDG_CACHE_HOME:-~/.cache}/wsgate-interop
// (WSGATE_INTEROP_CACHE). CHROMIUM, WSGATE_INTEROP_NODE,
// WSGATE_INTEROP_OPENSSL and WSGATE_INTEROP_PYTHON name other binaries. A
// missing peer skips its test with the command that installs it, and fails
// it under CI=true.
//
// The hostile and memory tests measure the whole process, so they do not
// run in parallel; the interop tests do, after them. Run one with, e.g.:
//
//	go test -race -run 'TestHostileSessions/oversized_record' -v ./internal/tlsinterop
package tlsinterop
