// Package framewrite writes WebSocket frames to gnet connections: the one
// frame writer of both directions. A frame goes out as header and payload
// in one writev; a frame relayed as its bytes arrive goes out as a first
// piece (header and what has arrived of the payload) and later pieces.
// Toward a server (a backend), every frame is masked with a fresh key from
// a ChaCha8 stream seeded by the operating system (RFC 6455 5.3: the
// gateway is the client there and never forwards a client's key).
//
// One Writer per event loop, shared by everything on that loop (client
// sessions, backend connections, the relay); Loop-only. Payloads given to
// it are masked in place: they must be the caller's to change.
package framewrite
