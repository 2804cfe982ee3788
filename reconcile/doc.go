// Package reconcile keeps every shard's backend pools at target.
//
// Per shard, one goroutine (worker.run) waits on a size-1 signal channel,
// so a burst of events (releases, failures, waiting sessions, config
// changes) coalesces into one run, and on a jittered tick (5 s +-10%) as a
// safety net. Each run is one authoritative ensure-capacity step: the
// shard's loop sweeps its idle connections (pool.Shard.Sweep, through
// Execute) and reports what is left; the worker then dials what is missing,
// off-loop, with a timeout, and enrolls each upgraded connection into the
// loop. Dials respect each backend's Max through pool.Backend.Reserve and
// its backoff after failures.
//
// Nothing here touches loop state directly: the worker reads atomics and
// talks to its loop only through Execute and Enroll.
package reconcile
