package backoff

import (
	"sync/atomic"
	"time"

	"github.com/wsgate/wsgate/internal/jitter"
)

// Backoff is one retry schedule and where it stands. The zero state is
// "no failure yet"; do not copy a Backoff once used.
type Backoff struct {
	Base   time.Duration // delay after the first failure in a row (> 0)
	Cap    time.Duration // longest delay, before jitter (>= Base)
	Jitter float64       // each delay is scaled by a random factor in [1-Jitter, 1+Jitter]

	failures atomic.Int64 // failures in a row; 0 after Reset
	current  atomic.Int64 // the delay Next last returned, in ns; 0 after Reset
}

// Next records a failure and returns how long to wait before the next
// attempt: Base, doubled for each failure in a row before this one, at
// most Cap, jittered. Safe for concurrent use.
func (b *Backoff) Next() time.Duration {
	d := jitter.Scale(b.delay(b.failures.Add(1)), b.Jitter)
	b.current.Store(int64(d))
	return d
}

// Reset records a success: the next failure waits about Base again.
// Safe for concurrent use.
func (b *Backoff) Reset() {
	b.failures.Store(0)
	b.current.Store(0)
}

// Current is the delay Next last returned, 0 if there was no failure
// since the last Reset. Safe for concurrent use.
func (b *Backoff) Current() time.Duration { return time.Duration(b.current.Load()) }

// Failures is the number of failures in a row since the last Reset. Safe
// for concurrent use.
func (b *Backoff) Failures() int64 { return b.failures.Load() }

// delay is the schedule's delay, before jitter, after the n-th failure in
// a row (n >= 1).
func (b *Backoff) delay(n int64) time.Duration {
	d := b.Base
	for ; n > 1 && d > 0 && d < b.Cap; n-- {
		if d > b.Cap/2 {
			return b.Cap
		}
		d *= 2
	}
	return min(d, b.Cap)
}
