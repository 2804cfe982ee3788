package testutil

import (
	"errors"
	"os"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// PollInterval is how long CheckFor waits between two calls of its
// condition: short enough that a test never waits noticeably past the
// moment its condition holds, long enough not to take a core.
const PollInterval = 2 * time.Millisecond

// CheckFor calls cond every PollInterval until it returns nil, and fails
// t (Fatalf) with the last error cond returned once timeout has passed.
// cond is called at least once, even with a zero timeout, and its last
// call comes after the deadline, so a condition that holds by then
// passes. Make the error say what is missing and what there is instead
// ("idle 1, want 2"): it is the failure message. It returns how long the
// condition took to hold, for tests that bound it tighter than timeout or
// report it. Call it from the test's goroutine.
func CheckFor(t testing.TB, timeout time.Duration, cond func() error) time.Duration {
	t.Helper()
	start := time.Now()
	deadline := start.Add(timeout)
	for {
		err := cond()
		if err == nil {
			return time.Since(start)
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %v", timeout, err)
			return time.Since(start) // t.Fatalf ends the goroutine; a fake TB may not
		}
		time.Sleep(PollInterval)
	}
}

// WaitFor is CheckFor for a condition that has nothing to say but whether
// it holds: on timeout the failure names what, the condition waited for.
// It returns how long the condition took to hold.
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	return CheckFor(t, timeout, func() error {
		if cond() {
			return nil
		}
		return errors.New("still waiting for " + what)
	})
}

// IgnoreGnetWorkers adds gnet's shared worker pool (ants) to what goleak
// ignores: gnet runs Enroll on it and its idle workers park for a while
// before they expire. They are a fixed pool, not per connection, not ours.
func IgnoreGnetWorkers(opts ...goleak.Option) []goleak.Option {
	return append(opts,
		goleak.IgnoreAnyFunction("github.com/panjf2000/ants/v2.(*goWorker).run.func1"),
		goleak.IgnoreTopFunction("github.com/panjf2000/ants/v2.(*poolCommon).purgeStaleWorkers"),
		goleak.IgnoreTopFunction("github.com/panjf2000/ants/v2.(*poolCommon).ticktock"))
}

// OpenFDs counts this process's open file descriptors.
func OpenFDs(t testing.TB) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}
