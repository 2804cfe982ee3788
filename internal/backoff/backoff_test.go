package backoff

import (
	"sync"
	"testing"
	"time"
)

// TestSchedule: doubling from Base to Cap, without jitter; Reset starts
// over; Current and Failures follow.
func TestSchedule(t *testing.T) {
	b := &Backoff{Base: 100 * time.Millisecond, Cap: time.Second}
	if b.Current() != 0 || b.Failures() != 0 {
		t.Fatalf("new: current %v, failures %d", b.Current(), b.Failures())
	}
	want := []time.Duration{100, 200, 400, 800, 1000, 1000, 1000}
	for i, w := range want {
		w *= time.Millisecond
		if got := b.Next(); got != w {
			t.Fatalf("failure %d: %v, want %v", i+1, got, w)
		}
		if b.Current() != w || b.Failures() != int64(i+1) {
			t.Fatalf("after failure %d: current %v, failures %d", i+1, b.Current(), b.Failures())
		}
	}
	b.Reset()
	if b.Current() != 0 || b.Failures() != 0 {
		t.Fatalf("after Reset: current %v, failures %d", b.Current(), b.Failures())
	}
	if got := b.Next(); got != 100*time.Millisecond {
		t.Fatalf("first failure after Reset: %v, want the base", got)
	}
}

// TestScheduleEdges: a cap that is not a power-of-two multiple of the
// base, a base at the cap, a cap near the largest duration (no overflow),
// and a long outage (the delay stays at the cap, cheaply).
func TestScheduleEdges(t *testing.T) {
	for _, tc := range []struct {
		name      string
		base, cap time.Duration
		failures  int64
		want      time.Duration
	}{
		{"cap between steps", 100 * time.Millisecond, 30 * time.Second, 9, 25600 * time.Millisecond},
		{"cap reached between steps", 100 * time.Millisecond, 30 * time.Second, 10, 30 * time.Second},
		{"base at the cap", time.Second, time.Second, 3, time.Second},
		{"huge cap", time.Hour, 1<<63 - 1, 200, 1<<63 - 1},
		{"long outage", time.Millisecond, time.Minute, 1 << 40, time.Minute},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := &Backoff{Base: tc.base, Cap: tc.cap}
			b.failures.Store(tc.failures - 1)
			if got := b.Next(); got != tc.want {
				t.Fatalf("failure %d: %v, want %v", tc.failures, got, tc.want)
			}
		})
	}
}

// TestJitterStaysWithinBounds: at the base and at the cap, every delay is
// within +-Jitter of the schedule's.
func TestJitterStaysWithinBounds(t *testing.T) {
	b := &Backoff{Base: 100 * time.Millisecond, Cap: time.Second, Jitter: 0.2}
	for i := 0; i < 2000; i++ {
		b.Reset()
		if d := b.Next(); d < 80*time.Millisecond || d > 120*time.Millisecond {
			t.Fatalf("first delay %v outside [80ms, 120ms]", d)
		}
		for b.Failures() < 6 {
			b.Next()
		}
		if d := b.Current(); d < 800*time.Millisecond || d > 1200*time.Millisecond {
			t.Fatalf("capped delay %v outside [800ms, 1.2s]", d)
		}
	}
}

// TestConcurrentFailures: failures recorded from many goroutines at once
// are all counted (run with -race).
func TestConcurrentFailures(t *testing.T) {
	b := &Backoff{Base: time.Millisecond, Cap: time.Second, Jitter: 0.1}
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 100 {
				b.Next()
				_ = b.Current()
			}
		}()
	}
	wg.Wait()
	if b.Failures() != 800 {
		t.Fatalf("%d failures counted, want 800", b.Failures())
	}
}
