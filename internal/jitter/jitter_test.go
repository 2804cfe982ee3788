package jitter

import (
	"math"
	"testing"
	"time"
)

// TestScaleStaysWithinBounds: every draw is within [d(1-f), d(1+f)], and
// the draws cover the range rather than sitting at one point.
func TestScaleStaysWithinBounds(t *testing.T) {
	for _, tc := range []struct {
		name string
		d    time.Duration
		f    float64
	}{
		{"5 s +-10%", 5 * time.Second, 0.1},
		{"100 ms +-20%", 100 * time.Millisecond, 0.2},
		{"1 ns +-50%", 1, 0.5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lo := time.Duration(float64(tc.d) * (1 - tc.f))
			hi := time.Duration(float64(tc.d) * (1 + tc.f))
			minSeen, maxSeen := hi, lo
			for range 10000 {
				got := Scale(tc.d, tc.f)
				if got < lo || got > hi {
					t.Fatalf("Scale(%v, %v) = %v, outside [%v, %v]", tc.d, tc.f, got, lo, hi)
				}
				minSeen, maxSeen = min(minSeen, got), max(maxSeen, got)
			}
			if spread := float64(maxSeen-minSeen) / float64(hi-lo); tc.d > 1 && spread < 0.9 {
				t.Errorf("10000 draws cover %.0f%% of the range [%v, %v] (%v to %v)", 100*spread, lo, hi, minSeen, maxSeen)
			}
		})
	}
	if got := Scale(time.Second, 0); got != time.Second {
		t.Errorf("Scale(1s, 0) = %v, want 1s", got)
	}
	for range 1000 {
		if got := Scale(math.MaxInt64, 0.5); got < math.MaxInt64/2 {
			t.Fatalf("Scale(the longest duration, 0.5) = %v: overflowed", got)
		}
	}
}
