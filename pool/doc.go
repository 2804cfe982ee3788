// Package pool owns wsgate's backend connections: per backend, its settings
// and shared counters; per shard (ShardPool, one per event loop) and
// backend, a ring of idle connections enrolled on that loop; leasing,
// releasing (with the close, reset and reuse policies), health pings, the
// per-group balancer that picks a backend for a new session, and moving an
// idle connection to a shard whose session waits (transfer.go; not for
// wss:// backends, whose TLS state is their loop's). Which group a session
// goes to is the relay's business (its routes); what it relays, too.
//
// Ownership: a ShardPool and everything in it (rings, connections,
// waiters) is touched only on its event loop, like the server's client
// sessions. The numbers others read (Counters, health, backoff) are
// atomics written by their owner. Dialing happens elsewhere (package
// reconcile), off-loop; only connected, upgraded connections enter a
// shard, through Enroll.
//
// Invariant: per backend, across shards, dialing+idle+leased+releasing+
// closing (Counters.Total) never passes Settings.Max. Total only grows
// through Reserve, a compare-and-swap against Max, and shrinks when a
// reserved dial fails or a connection's close completes.
package pool
