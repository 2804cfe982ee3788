package pool

import (
	"sync/atomic"
	"time"

	"github.com/wsgate/wsgate/codec"
	"github.com/wsgate/wsgate/internal/backoff"
)

// newDialBackoff is a backend's dial backoff: a failure episode backs the
// backend off 100 ms, doubling per episode in a row up to 1 s, scaled by a
// random factor in [0.8, 1.2] so shards and gateways do not probe in
// step. The cap is short on purpose: a backend that comes back is used
// again within about a second.
func newDialBackoff() backoff.Backoff {
	return backoff.Backoff{Base: 100 * time.Millisecond, Cap: time.Second, Jitter: 0.2}
}

// health is a backend's dial health: whether its dials succeed, the backoff
// after a failure episode, the last dial error, and the probe claim.
// Written by whoever finishes a dial (reconcile's dial goroutines; the
// loop when a dialed connection opens), read by anyone. Atomics only: safe
// for concurrent use.
//
// A failure episode is the set of dials that fail together: when a backend
// goes away, every dial in flight to it fails within moments, and only the
// first failure says something new. A failure steps the backoff only if
// its dial started after the current episode began; the others are counted
// and forgotten. While the backend is unhealthy, new dials go through one
// probe at a time (ClaimProbe), so each episode after the first is exactly
// one failed probe, and the backoff doubles per probe.
type health struct {
	healthy      atomic.Bool            // the last dial that said anything new succeeded; optimistic at creation
	backoffUntil atomic.Int64           // unix ns before which an unhealthy backend is not probed; 0 = no backoff
	backoff      backoff.Backoff        // the schedule, per failure episode in a row
	episodeStart atomic.Int64           // unix ns when the latest failure episode began; 0 = never failed
	probing      atomic.Bool            // the probe claim: a probe dial is in flight (see ClaimProbe)
	lastError    atomic.Pointer[string] // the last dial error; nil if none yet
}

// Healthy reports whether dials succeed: false from a dial failure until a
// dial succeeds again. Safe for concurrent use.
func (h *health) Healthy() bool { return h.healthy.Load() }

// LastError is the last dial error, "" if none. Safe for concurrent use.
func (h *health) LastError() string {
	if p := h.lastError.Load(); p != nil {
		return *p
	}
	return ""
}

// BackedOff reports whether no probe may start before the returned time.
// Safe for concurrent use.
func (h *health) BackedOff(now time.Time) (bool, time.Time) {
	until := h.backoffUntil.Load()
	return now.UnixNano() < until, time.Unix(0, until)
}

// ClaimProbe takes the backend's probe claim. While a backend is unhealthy
// only the holder of the claim dials it (one dial, across all shards), and
// only once the backoff has passed, so an outage costs one failed dial per
// backoff step. It returns false when the backend is healthy (dial it
// normally), still backed off, or another probe holds the claim. The holder
// must call ReleaseProbe when its dial ends, whatever the outcome
// (enrolled, failed, aborted). Safe for concurrent use.
func (h *health) ClaimProbe(now time.Time) bool {
	if h.healthy.Load() || now.UnixNano() < h.backoffUntil.Load() {
		return false
	}
	return h.probing.CompareAndSwap(false, true)
}

// ReleaseProbe gives back the probe claim. Only its holder calls it. Safe
// for concurrent use.
func (h *health) ReleaseProbe() { h.probing.Store(false) }

// Probing reports whether a probe dial holds the claim. Safe for
// concurrent use.
func (h *health) Probing() bool { return h.probing.Load() }

// DialSucceeded marks the backend healthy and ends its backoff. Called when
// a dialed connection joins the pool. Safe for concurrent use.
func (h *health) DialSucceeded() {
	h.backoff.Reset()
	h.backoffUntil.Store(0)
	h.healthy.Store(true)
}

// maxErrorText bounds the dial error a backend keeps.
const maxErrorText = 300

// dialFailed records a failed dial that started at started and failed at
// now. It begins a new failure episode, and reports so, only if the dial
// started after the latest episode began: then the backend is unhealthy
// and backed off for the next step of the schedule. A dial that started
// earlier is part of an episode already counted (or older than the success
// that ended it) and changes nothing but LastError.
func (h *health) dialFailed(err error, started, now time.Time) bool {
	// A backend's bad answer is quoted in its error: it is kept short
	// (the views show it, the logs write it).
	msg := codec.TruncateUTF8(err.Error(), maxErrorText)
	h.lastError.Store(&msg)
	s := started.UnixNano()
	for {
		e := h.episodeStart.Load()
		if s <= e {
			return false
		}
		if h.episodeStart.CompareAndSwap(e, now.UnixNano()) {
			break
		}
	}
	h.backoffUntil.Store(now.Add(h.backoff.Next()).UnixNano())
	h.healthy.Store(false)
	return true
}

// DialFailed gives back a reservation of shard i whose dial or handshake
// failed, started at started and failed at now, and records the failure
// (see health): the first failure of an episode marks the backend
// unhealthy and backs it off, 100 ms doubling per episode in a row, capped
// at 1 s, +-20%. It reports whether this failure began a new episode. Safe
// for concurrent use.
func (b *Backend) DialFailed(i int, err error, started, now time.Time) bool {
	b.unreserve(i)
	b.DialFailures.Add(1)
	return b.dialFailed(err, started, now)
}
