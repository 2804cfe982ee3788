// Package reconcile keeps every shard's backend pools at target.
//
// Per shard, one goroutine (worker.run) waits on a size-1 signal channel,
// so a burst of events (releases, failures, waiting sessions, config
// changes, finished dials) coalesces into one run, and on a jittered tick
// (5 s +-10%) as a safety net, brought forward to the end of the backoff
// of a backend the worker wants to dial. Each run is one authoritative
// ensure-capacity step: the shard's loop sweeps its idle connections
// (pool.ShardPool.Sweep, through Execute) and reports what is left; the worker
// then starts dials for what is missing and returns without waiting for
// them. Each dial is its own goroutine (worker.dial, owned by the worker):
// off-loop, with a timeout, cancelled when the reconciler stops; it enrolls
// the upgraded connection into the loop and, however it ends, wakes the
// worker to re-evaluate.
//
// Limits: dials respect each backend's Max through pool.Backend.Reserve; a
// worker has at most Config.DialConcurrency dials in flight, and at most
// Config.DialsPerBackend to one backend, so a backend that accepts and
// never answers cannot take every dial slot from the healthy ones.
//
// Failures: a backend whose dial fails is unhealthy and backed off (see
// pool's health: one step per failure episode, 100 ms doubling to 1 s,
// +-20%). While it is unhealthy, only one probe dial reaches it, across
// all shards (pool.Backend.ClaimProbe), each after the backoff; when a
// probe ends, every shard's worker is woken, so a probe that succeeds
// refills every pool at once.
//
// Nothing here touches loop state directly: the worker reads atomics and
// talks to its loop only through Execute and Enroll.
package reconcile
