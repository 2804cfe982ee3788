// Package server is wsgate's gnet event handler: it accepts TCP
// connections itself (acceptor.go: admission, the descriptor reserve, the
// TLS listener's handshakes off the loops), runs the WebSocket handshake
// and the client session state machine (handshaking, open, failing,
// closing, closed), enforces admission and size limits, drives per-shard
// timers (handshake, idle ping/pong, close handshake) and flow control
// (flow.go: a peer's full queue pauses reading its source).
//
// Each gnet event loop is a shard (Shard). A shard owns its sessions, its
// timer wheel, its frame writer and its deferred-work queue; they are
// touched only on that loop's goroutine. Other goroutines (the shard's
// ticker, the acceptor, signal handlers, tests) reach a shard only through
// gnet's EventLoop.Execute (Shard.Run). Work that touches another
// connection runs after the current callback (Shard.Defer), never inside
// it. Numbers others read (Stats) are atomics.
//
// What a session does with its messages is a Handler's business: Echo is
// the built-in one (`wsgate echo`, tests, the loadtest backends);
// relay.Proxy is the gateway's. Connections that are not client sessions
// (backend connections, enrolled by package pool) get their events
// through ConnHandler.
package server
