package pool

import (
	"errors"
	"sync"
	"testing"
	"time"
)

var errRefused = errors.New("connection refused")

// newHealthFixture is one backend with room for many dials, and a clock.
func newHealthFixture(t *testing.T) (*Backend, time.Time) {
	t.Helper()
	f := newFixture(t, Settings{URL: "ws://a:1/", Max: 64})
	return f.pool.Backends()[0], time.Unix(1_700_000_000, 0)
}

// checkBackoff fails unless b is unhealthy and backed off from now for the
// step-th delay of the schedule: 100 ms doubling, capped at 1 s, +-20%.
func checkBackoff(t *testing.T, b *Backend, now time.Time, step int) time.Time {
	t.Helper()
	base := min(100*time.Millisecond<<min(step-1, 10), time.Second)
	lo, hi := time.Duration(float64(base)*0.8), time.Duration(float64(base)*1.2)
	off, until := b.BackedOff(now)
	if b.Healthy() || !off {
		t.Fatalf("step %d: healthy %v, backed off %v", step, b.Healthy(), off)
	}
	if d := until.Sub(now); d < lo || d > hi {
		t.Fatalf("step %d: backed off for %v, want %v..%v", step, d, lo, hi)
	}
	if got := int32(b.backoff.Failures()); got != int32(step) {
		t.Fatalf("backoff step %d, want %d", got, step)
	}
	return until
}

// TestBackoffStepsOncePerEpisode: a backend goes away while 16 dials are
// in flight; they all fail, one after the other. Only the first failure is
// news: the backoff steps once, not 16 times (before, 16 failures reached
// the 30 s cap at once).
func TestBackoffStepsOncePerEpisode(t *testing.T) {
	b, t0 := newHealthFixture(t)
	for i := 0; i < 16; i++ {
		if !b.Reserve(0) {
			t.Fatal("reserve refused")
		}
	}
	first := t0.Add(50 * time.Millisecond)
	for i := 0; i < 16; i++ {
		now := first.Add(time.Duration(i) * 3 * time.Millisecond) // up to 45 ms later
		if began := b.DialFailed(0, errRefused, t0, now); began != (i == 0) {
			t.Fatalf("failure %d: began an episode: %v", i, began)
		}
	}
	checkBackoff(t, b, first, 1)
	if b.Total.Load() != 0 || b.Dialing.Load() != 0 || b.DialFailures.Load() != 16 {
		t.Fatalf("total %d dialing %d failures %d", b.Total.Load(), b.Dialing.Load(), b.DialFailures.Load())
	}
	if b.LastError() != errRefused.Error() {
		t.Fatalf("last error %q", b.LastError())
	}
}

// TestBackoffStepsOnceWhenFailuresRace: the failures of one episode arrive
// from many goroutines at once; still one step.
func TestBackoffStepsOnceWhenFailuresRace(t *testing.T) {
	b, t0 := newHealthFixture(t)
	const n = 32
	for i := 0; i < n; i++ {
		if !b.Reserve(0) {
			t.Fatal("reserve refused")
		}
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	began := 0
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if b.DialFailed(0, errRefused, t0, t0.Add(time.Duration(i+1)*time.Millisecond)) {
				mu.Lock()
				began++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if began != 1 || int32(b.backoff.Failures()) != 1 {
		t.Fatalf("%d failures began an episode; step %d", began, int32(b.backoff.Failures()))
	}
	if b.Total.Load() != 0 || b.DialFailures.Load() != n {
		t.Fatalf("total %d failures %d", b.Total.Load(), b.DialFailures.Load())
	}
}

// TestBackoffDoublesPerEpisodeUpToOneSecond: each probe that starts after
// the backoff and fails is a new episode: 100, 200, 400, 800 ms, then 1 s
// for good, each +-20%.
func TestBackoffDoublesPerEpisodeUpToOneSecond(t *testing.T) {
	b, now := newHealthFixture(t)
	for step := 1; step <= 12; step++ {
		if step > 1 && !b.ClaimProbe(now) {
			t.Fatalf("step %d: no probe claim after the backoff", step)
		}
		if !b.Reserve(0) {
			t.Fatal("reserve refused")
		}
		started := now
		now = now.Add(time.Millisecond) // refused at once
		if !b.DialFailed(0, errRefused, started, now) {
			t.Fatalf("step %d: the probe's failure did not begin an episode", step)
		}
		b.ReleaseProbe()
		now = checkBackoff(t, b, now, step)
	}
}

// The schedule's own bounds (jitter at both ends) are internal/backoff's
// tests; here, each backend gets the dial schedule.
func TestEveryBackendHasTheDialSchedule(t *testing.T) {
	b, _ := newHealthFixture(t)
	want := newDialBackoff()
	if b.backoff.Base != want.Base || b.backoff.Cap != want.Cap || b.backoff.Jitter != want.Jitter {
		t.Fatalf("backoff %v/%v/%v", b.backoff.Base, b.backoff.Cap, b.backoff.Jitter)
	}
}

// TestDialSuccessEndsBackoff: a success makes the backend healthy with no
// backoff, and the next failure starts the schedule over at 100 ms.
func TestDialSuccessEndsBackoff(t *testing.T) {
	b, now := newHealthFixture(t)
	for step := 1; step <= 4; step++ { // up to 800 ms
		b.Reserve(0)
		b.DialFailed(0, errRefused, now, now.Add(time.Millisecond))
		now = now.Add(2 * time.Second)
	}
	b.DialSucceeded()
	if off, _ := b.BackedOff(now); !b.Healthy() || off || int32(b.backoff.Failures()) != 0 {
		t.Fatalf("after a success: healthy %v, backed off %v, step %d", b.Healthy(), off, int32(b.backoff.Failures()))
	}
	b.Reserve(0)
	b.DialFailed(0, errRefused, now, now.Add(time.Millisecond))
	checkBackoff(t, b, now.Add(time.Millisecond), 1)
}

// TestStaleFailureAfterRecoveryChangesNothing: a dial that started before
// an outage and fails after the backend came back (it hung until its
// timeout) says nothing about the backend now: it stays healthy.
func TestStaleFailureAfterRecoveryChangesNothing(t *testing.T) {
	b, t0 := newHealthFixture(t)
	b.Reserve(0) // the dial that will hang
	b.Reserve(0)
	b.DialFailed(0, errRefused, t0, t0.Add(10*time.Millisecond)) // the outage begins
	b.DialSucceeded()                                            // a probe got through
	if b.DialFailed(0, errors.New("i/o timeout"), t0, t0.Add(5*time.Second)) {
		t.Fatal("a dial from before the outage began an episode")
	}
	if !b.Healthy() || b.Total.Load() != 0 {
		t.Fatalf("healthy %v, total %d", b.Healthy(), b.Total.Load())
	}
	if b.LastError() != "i/o timeout" {
		t.Fatalf("last error %q", b.LastError())
	}
}

// TestProbeClaim: no probe for a healthy backend or during its backoff;
// then one claim at a time, across any number of claimants, until its
// holder releases it; and again after each outcome of the probe's dial.
func TestProbeClaim(t *testing.T) {
	b, now := newHealthFixture(t)
	if b.ClaimProbe(now) {
		t.Fatal("claimed a probe of a healthy backend")
	}
	b.Reserve(0)
	b.DialFailed(0, errRefused, now, now)
	_, until := b.BackedOff(now)
	if b.ClaimProbe(until.Add(-time.Nanosecond)) {
		t.Fatal("claimed a probe during the backoff")
	}
	now = until

	// Many shards at once: exactly one wins.
	var wg sync.WaitGroup
	var mu sync.Mutex
	won := 0
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if b.ClaimProbe(now) {
				mu.Lock()
				won++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if won != 1 || !b.Probing() {
		t.Fatalf("%d claims held at once (probing %v)", won, b.Probing())
	}

	// The probe is aborted (reconcile stops): released, no new episode.
	b.Reserve(0)
	b.DialAborted(0)
	b.ReleaseProbe()
	if b.Probing() || !b.ClaimProbe(now) {
		t.Fatal("claim not free after an aborted probe")
	}
	if int32(b.backoff.Failures()) != 1 {
		t.Fatalf("an abort stepped the backoff to %d", int32(b.backoff.Failures()))
	}

	// The probe fails: released, and the next claim waits for the doubled backoff.
	b.Reserve(0)
	b.DialFailed(0, errRefused, now, now.Add(time.Millisecond))
	b.ReleaseProbe()
	now = checkBackoff(t, b, now.Add(time.Millisecond), 2)
	if b.Probing() || !b.ClaimProbe(now) {
		t.Fatal("claim not free after a failed probe and its backoff")
	}

	// The probe succeeds: released, and no probe is needed any more.
	b.DialSucceeded()
	b.ReleaseProbe()
	if b.Probing() || b.ClaimProbe(now) {
		t.Fatal("probe claimed for a backend that is healthy again")
	}
	if b.Total.Load() != 0 {
		t.Fatalf("total %d after every reservation was given back", b.Total.Load())
	}
}
