package loadtest

import (
	"math"
	"math/rand/v2"
	"sort"
	"sync"
	"testing"
	"time"
)

// exactRange is the reference: the values at the nearest rank
// round(q/100 * n) of the sorted samples and its two neighbours. Nearest-rank
// definitions differ by one rank (ceil or round, and float error in q/100*n),
// so a correct answer is any of those three, within the histogram's precision.
func exactRange(sorted []int64, q float64) (lo, hi int64) {
	rank := int(math.Round(q / 100 * float64(len(sorted))))
	at := func(r int) int64 { return sorted[min(max(r, 1), len(sorted))-1] }
	return at(rank - 1), at(rank + 1)
}

func TestPercentilesMatchSortedReference(t *testing.T) {
	dists := map[string]func(r *rand.Rand) int64{
		"uniform 1us-10ms": func(r *rand.Rand) int64 { return 1 + r.Int64N(10_000) },
		"lognormal around 300us": func(r *rand.Rand) int64 {
			return int64(math.Exp(r.NormFloat64()*0.8 + math.Log(300)))
		},
		"bimodal with a 2s tail": func(r *rand.Rand) int64 {
			if r.IntN(1000) == 0 {
				return 2_000_000 + r.Int64N(100_000)
			}
			return 100 + r.Int64N(200)
		},
		"all equal": func(*rand.Rand) int64 { return 777 },
	}
	for name, gen := range dists {
		t.Run(name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(1, 2))
			samples := make([]int64, 50_000)
			for i := range samples {
				samples[i] = max(gen(r), 1)
			}
			// Record from several goroutines into several shards, as the
			// readers do; the window must hold exactly the samples.
			rec := newLatencyRecorder(8)
			rec.startWindow()
			var wg sync.WaitGroup
			const workers = 4
			for w := 0; w < workers; w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := w; i < len(samples); i += workers {
						rec.record(uint32(i), time.Duration(samples[i])*time.Microsecond)
					}
				}()
			}
			wg.Wait()
			got := summarize(rec.stopWindow())
			if got.Count != int64(len(samples)) {
				t.Fatalf("count %d, want %d", got.Count, len(samples))
			}
			sort.Slice(samples, func(i, j int) bool { return samples[i] < samples[j] })
			for _, c := range []struct {
				name string
				q    float64
				got  int64
			}{{"p50", 50, got.P50}, {"p99", 99, got.P99}, {"p99.9", 99.9, got.P999}, {"max", 100, got.Max}} {
				lo, hi := exactRange(samples, c.q)
				// Three significant digits: within 0.1% (and 1 µs below 1 ms).
				tol := func(v int64) float64 { return math.Max(1, 0.001*float64(v)) }
				if float64(c.got) < float64(lo)-tol(lo) || float64(c.got) > float64(hi)+tol(hi) {
					t.Errorf("%s = %d µs, reference %d..%d µs", c.name, c.got, lo, hi)
				}
			}
			// The per-second histograms saw the same samples and are cleared
			// by takeSecond; the echo count is kept.
			sec := newLatencyHistogram()
			if rec.takeSecond(sec); sec.TotalCount() != int64(len(samples)) {
				t.Errorf("per-second count %d, want %d", sec.TotalCount(), len(samples))
			}
			if rec.takeSecond(sec); sec.TotalCount() != 0 {
				t.Errorf("per-second histogram not cleared: %d", sec.TotalCount())
			}
			if n := rec.received(); n != int64(len(samples)) {
				t.Errorf("received %d, want %d", n, len(samples))
			}
			// After stopWindow, records reach only the per-second histograms.
			rec.record(1, time.Millisecond)
			if w := rec.stopWindow(); w.TotalCount() != int64(len(samples)) {
				t.Errorf("a stopped window went from %d to %d values", len(samples), w.TotalCount())
			}
		})
	}
}

func TestRecordClampsOutOfRange(t *testing.T) {
	h := newLatencyHistogram()
	recordMicros(h, -time.Second)
	recordMicros(h, 0)
	recordMicros(h, 10*time.Minute)
	if h.TotalCount() != 3 {
		t.Fatalf("count %d, want 3: out-of-range values must be clamped, not dropped", h.TotalCount())
	}
	if h.Min() != latencyMinMicros || h.Max() < latencyMaxMicros*999/1000 {
		t.Errorf("min %d max %d", h.Min(), h.Max())
	}
}

func TestSummarizeEmpty(t *testing.T) {
	if got := summarize(newLatencyHistogram()); got != (Percentiles{}) {
		t.Errorf("empty histogram summarised as %+v", got)
	}
}
