package tlsinterop

import (
	"crypto/tls"
	"fmt"
	"runtime"
	"runtime/debug"
	"sync"
	"testing"
	"time"

	"github.com/wsgate/wsgate/server"
)

// heapTolerance is how far the live heap may stay above its baseline
// after manySessions sessions came and went: 1 MiB, about 500 bytes a
// session (a run measures tens of KiB in all). What a session holds while it lives (its TLS state, the
// crypto/tls buffers, the session struct) is tens of KiB; a leak of any
// of it per session passes the bound many times over, while what may
// legitimately differ between two measurements (a map grown in place, a
// pool's calibration, the runtime's own bookkeeping) stays well under it.
const heapTolerance = 1 << 20

// manySessions is how many wss:// sessions the memory test opens and
// closes.
const manySessions = 2000

// TestMemoryAfterManySessions opens and closes 2,000 wss:// sessions (TLS
// 1.2 and 1.3, half of them resumed; each echoes a text and a binary
// message and closes 1000), then requires the live heap after a
// collection back near its baseline, and the descriptors and goroutines
// back to theirs. Not in parallel: it measures the whole process.
func TestMemoryAfterManySessions(t *testing.T) {
	p := newPKI(t)
	srv := startServer(t, server.Config{}, p)
	url := "wss://" + srv.TLSAddr() + "/memory"
	configs := make([]*tls.Config, 4)
	for i := range configs {
		configs[i] = p.client([]uint16{tls.VersionTLS12, tls.VersionTLS13}[i%2])
		if i >= 2 {
			configs[i].ClientSessionCache = tls.NewLRUClientSessionCache(8)
		}
	}

	// A warm-up first, so what is made once (pools, the loops' buffers,
	// ticket keys, the session caches) exists before the baseline.
	const warmUp = 100
	runSessions(t, url, configs, warmUp)
	waitCounts(t, srv.Stats(), nil, sessionsCounts(warmUp))
	base := takeResources(t)
	heapBase := liveHeap()

	start := time.Now()
	runSessions(t, url, configs, manySessions)
	elapsed := time.Since(start)
	waitCounts(t, srv.Stats(), nil, sessionsCounts(warmUp+manySessions))
	waitResources(t, base)
	heap := liveHeap()
	t.Logf("%d sessions in %v; live heap %.2f MiB before, %.2f MiB after (%+d KiB)", manySessions, elapsed.Round(time.Millisecond),
		float64(heapBase)/(1<<20), float64(heap)/(1<<20), (int64(heap)-int64(heapBase))>>10)
	if heap > heapBase+heapTolerance {
		t.Errorf("live heap grew by %d KiB over %d sessions (%d bytes a session): more than the %d KiB allowed",
			(heap-heapBase)>>10, manySessions, (heap-heapBase)/manySessions, heapTolerance>>10)
	}
}

func sessionsCounts(n int64) counts {
	return counts{"accepted": n, "tls_handshakes": n, "upgraded": n, "closed/client_close": n, "frames_in": 3 * n, "frames_out": 3 * n}
}

// runSessions runs n sessions (wssSession), four at a time, each worker
// with its own client configuration.
func runSessions(t *testing.T, url string, configs []*tls.Config, n int) {
	t.Helper()
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []string
	)
	next := make(chan int)
	for w := range configs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				st := wssSessionErr(url, configs[w])
				if st.err != nil {
					mu.Lock()
					errs = append(errs, fmt.Sprintf("session %d: %v", i, st.err))
					mu.Unlock()
				}
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("%d of %d sessions failed; the first: %s", len(errs), n, errs[0])
	}
}

// liveHeap is the heap in use once everything unreachable is collected
// (twice: what sync.Pools hold survives one collection).
func liveHeap() uint64 {
	runtime.GC()
	runtime.GC()
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}
