package main

import (
	"os"
	"runtime/debug"
)

// defaultGCPercent is the garbage collector's target when GOGC is not set.
// The gateway's heap is almost all long-lived session state (TLS keys and
// record state, sessions, pooled connections) and its relay path
// allocates next to nothing, so Go's default of 100 (the heap may grow to
// twice what is live before a collection) mostly buys resident memory
// that holds garbage. At 50 the heap stays within 1.5 times what is live;
// the extra collections come while sessions are set up (TLS handshakes
// allocate), not per message. Measured at 9,000 idle wss:// sessions:
// 12.9-13.3 KB a session over idle at 100, 10.9-11.4 KB at 50
// (BENCHMARKS.md). GOGC in the environment overrides it, as for any Go
// program.
const defaultGCPercent = 50

func tuneGC() {
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(defaultGCPercent)
	}
}
