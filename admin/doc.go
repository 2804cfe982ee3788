// Package admin is wsgate's operating side: the admin HTTP endpoint and the
// per-session access log.
//
// It owns:
//   - the endpoint (Listen, Handler): /metrics (Prometheus), /pools (the
//     SHOW POOLS view, JSON or a text table), /stats (the status page's
//     numbers as JSON), /healthz and /readyz, /debug/pprof/, the operator
//     actions (POST /actions/pause, resume, drain, reload) and the live
//     status page at /;
//   - the session-end hook (Hook) that feeds the Recorder (session
//     outcomes, close codes, the session duration histogram) and the
//     AccessLog (one structured zap line per session, sampled);
//   - who may do what: the endpoint binds to loopback unless a token is
//     set; actions need the token when one is set; GET views are open to
//     loopback clients.
//
// Ownership: admin runs on net/http goroutines and never touches a shard.
// Everything it shows is read from atomics (server.Stats, pool.Counters,
// per-shard counters) at the moment a view or a scrape asks for it, so the
// event loops pay nothing for metrics: no per-message update, no lock. The
// operator actions flip the pool's atomics (Backend.Pause, Drain, Resume)
// and wake the reconcile workers; the loops pick the change up on their
// own. The one thing that runs on the loops is the session-end hook, once
// per session: atomic adds, a lock-free histogram observation, and (when
// the access log is on and the session is sampled) a zap write through the
// process's buffered core.
package admin
