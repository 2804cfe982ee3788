// Package server is wsgate's gnet event handler: it accepts TCP connections,
// runs the WebSocket handshake and the client session state machine
// (handshaking, open, closing, closed), enforces admission and size limits,
// and drives per-shard timers (handshake, idle ping/pong, close handshake).
//
// Each gnet event loop is a shard. A shard owns its sessions and its timer
// wheel; they are touched only on that loop's goroutine. Other goroutines
// (the shard's ticker, signal handlers, tests) reach a shard only through
// gnet's EventLoop.Execute. Numbers others read (Stats) are atomics.
//
// What a session does with its messages is a Handler's business: Echo is
// the built-in one used by `wsgate echo`, tests and the loadtest backends.
package server
