// Package relay is the gateway's relay: a session's binding to its backend
// connection and both directions of it. It owns:
//
//   - the routes (routing.go: exact paths, then the longest prefix, then
//     the default group), swapped whole by the configuration applier, and
//     the choice of a group for a new session by its path, with the
//     refusals before the upgrade (404 no route, 503 no backend);
//   - leasing a connection from the session's shard pool, or waiting for
//     one (the session's frames held, then 1013 past the acquire timeout);
//   - the session-start message a backend gets first;
//   - both directions, cut-through: a frame's bytes are forwarded as they
//     arrive (client pieces masked again with the gateway's own key toward
//     the backend, backend pieces as they are toward the client), so a big
//     frame never sits whole in memory;
//   - flow control between the two: past the high watermark of one side's
//     queue the other side is not read (server's flow.go does the pausing);
//   - a client's protocol error: the backend's replies to the client's
//     earlier messages go through (a bounded drain), then the close;
//   - the release decision: a connection goes back to the pool clean only
//     if neither direction stopped mid-message.
//
// The pool owns the connections, their rings, leases and health; the
// server owns the client session. While leased, a backend connection's
// gnet events come here (pool.Conn.Bind): a client frame crosses one
// package boundary (server to relay), a backend frame too (server's
// dispatch to relay).
//
// Ownership: everything here is Loop-only, owned by the session's shard;
// the Proxy itself is shared: read-only after New but for its routing, an
// atomic pointer.
package relay
