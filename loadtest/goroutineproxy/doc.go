// Package goroutineproxy is the baseline wsgate is measured against: a
// faithful, carefully written implementation of the improved Go design of
// the field report (shared/SEEDS.md), the design wsgate's event loops are
// meant to beat on CPU and memory per session.
//
// The design, as the report gives it:
//   - gorilla/websocket, one goroutine per client session (net/http's
//     connection goroutine, which becomes the client->backend relay);
//   - per backend a Pool: a buffered channel of idle backend connections,
//     a sync.Map of leased ones, atomic counters and health flags, and no
//     pool-wide lock; acquire and release never block and never do I/O;
//   - per backend connection a reader goroutine (backend->client relay,
//     pongs) and a health goroutine that pings it when quiet;
//   - per pool an event-driven reconcile worker: every event only signals
//     a size-1 channel, so bursts coalesce; one worker serialises the runs;
//     a jittered 5 s tick is the safety net; one ensureCapacity step purges
//     broken idle connections and grows or shrinks toward the target.
//
// Ownership: a session's client->backend writes happen on its handler
// goroutine, its backend->client writes on the reader goroutine of the
// backend connection it leased; control frames (pings, closes) use
// gorilla's WriteControl, which is safe beside them. Pool counters are
// written by whoever makes the transition and read by anyone.
//
// It runs as its own process (`loadtest goroutine-proxy`), so the loadtest
// measures it alone.
package goroutineproxy
