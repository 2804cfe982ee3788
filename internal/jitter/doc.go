// Package jitter spreads periodic and retried work in time, so that
// shards, sources and gateways started together do not act in step.
//
// Scale is safe for concurrent use from any goroutine, event loops
// included: it draws from math/rand/v2's global source, which is
// per-thread and never blocks.
package jitter
