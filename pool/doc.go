// Package pool owns wsgate's backend connections: per backend, its settings
// and shared counters; per shard (event loop) and backend, a ring of idle
// connections enrolled on that loop; leasing, releasing (with the reuse,
// reset and close policies), health pings, and the balancer that picks a
// backend for a new session.
//
// Ownership: a Shard and everything in it (rings, connections, waiters) is
// touched only on its event loop, like the server's client sessions. The
// numbers others read (Counters, health, backoff) are atomics written by
// their owner. Dialing happens elsewhere (package reconcile), off-loop;
// only connected, upgraded connections enter a shard, through Enroll.
//
// Invariant: per backend, across shards, dialing+idle+leased+releasing
// (Counters.Total) never passes Settings.Max. Total only grows through
// Reserve, a compare-and-swap against Max, and shrinks when a reserved
// dial fails or a connection closes.
package pool
