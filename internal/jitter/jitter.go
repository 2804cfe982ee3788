package jitter

import (
	"math"
	"math/rand/v2"
	"time"
)

// Scale returns d scaled by a random factor drawn uniformly from
// [1-f, 1+f] (f in [0, 1]; 0 returns d), at most the longest duration.
// Safe for concurrent use.
func Scale(d time.Duration, f float64) time.Duration {
	if f == 0 {
		return d
	}
	s := float64(d) * (1 - f + 2*f*rand.Float64())
	if s >= math.MaxInt64 { // float64(MaxInt64) is 2^63: past the end
		return math.MaxInt64
	}
	return time.Duration(s)
}
