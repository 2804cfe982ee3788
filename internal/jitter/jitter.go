// Package jitter spreads periodic work and deadlines: a duration scaled
// by a random factor, so timers of many connections or instances do not
// fire together. Safe for concurrent use.
package jitter

import (
	"math/rand/v2"
	"time"
)

// Scale returns d scaled by a random factor in [1-f, 1+f].
func Scale(d time.Duration, f float64) time.Duration {
	return time.Duration(float64(d) * (1 - f + 2*f*rand.Float64()))
}
