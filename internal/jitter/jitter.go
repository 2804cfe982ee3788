package jitter

import (
	"math/rand/v2"
	"time"
)

// Scale returns d scaled by a random factor drawn uniformly from
// [1-f, 1+f] (f in [0, 1]; 0 returns d). Safe for concurrent use.
func Scale(d time.Duration, f float64) time.Duration {
	return time.Duration(float64(d) * (1 - f + 2*f*rand.Float64()))
}
