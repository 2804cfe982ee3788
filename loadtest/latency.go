package loadtest

import (
	"sync"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
)

// Round trips are recorded in microseconds from 1 µs to 60 s with three
// significant digits: exact below 1 ms, within 0.1% above.
const (
	latencyMinMicros = 1
	latencyMaxMicros = 60_000_000
	latencySigDigits = 3
)

func newLatencyHistogram() *hdr.Histogram {
	return hdr.New(latencyMinMicros, latencyMaxMicros, latencySigDigits)
}

// recordMicros clamps d into the histogram's range and records it.
func recordMicros(h *hdr.Histogram, d time.Duration) {
	us := d.Microseconds()
	if us < latencyMinMicros {
		us = latencyMinMicros
	}
	if us > latencyMaxMicros {
		us = latencyMaxMicros
	}
	_ = h.RecordValue(us) // cannot fail: us is in range
}

// Percentiles summarises a latency histogram, in microseconds.
type Percentiles struct {
	Count int64   `json:"count"`
	Mean  float64 `json:"mean_us"`
	P50   int64   `json:"p50_us"`
	P99   int64   `json:"p99_us"`
	P999  int64   `json:"p999_us"`
	Max   int64   `json:"max_us"`
}

func summarize(h *hdr.Histogram) Percentiles {
	if h.TotalCount() == 0 {
		return Percentiles{}
	}
	return Percentiles{
		Count: h.TotalCount(),
		Mean:  h.Mean(),
		P50:   h.ValueAtQuantile(50),
		P99:   h.ValueAtQuantile(99),
		P999:  h.ValueAtQuantile(99.9),
		Max:   h.Max(),
	}
}

// latencyRecorder collects round trips from thousands of reader goroutines
// without one hot lock: each session records into the shard picked by its
// id, so on a 2-core machine two readers rarely meet on one mutex. Each
// shard keeps the current second (for the live line and the chart) and the
// measured window (for the final table), and counts echoes.
//
// record is safe for concurrent use; the other methods are called by the
// run's control goroutine.
type latencyRecorder struct {
	shards []latencyShard
}

type latencyShard struct {
	mu        sync.Mutex
	second    *hdr.Histogram // round trips since the last takeSecond
	window    *hdr.Histogram // round trips since startWindow, while measuring
	measuring bool           // window is recording
	received  int64          // echoes received since the start, under mu
	_         [24]byte       // keep neighbouring shards' mutexes off one cache line
}

func newLatencyRecorder(shards int) *latencyRecorder {
	r := &latencyRecorder{shards: make([]latencyShard, shards)}
	for i := range r.shards {
		r.shards[i].second = newLatencyHistogram()
		r.shards[i].window = newLatencyHistogram()
	}
	return r
}

// record counts one echo of session id that took d.
func (r *latencyRecorder) record(id uint32, d time.Duration) {
	sh := &r.shards[int(id)%len(r.shards)]
	sh.mu.Lock()
	recordMicros(sh.second, d)
	if sh.measuring {
		recordMicros(sh.window, d)
	}
	sh.received++
	sh.mu.Unlock()
}

// received is the number of echoes recorded so far.
func (r *latencyRecorder) received() int64 {
	var n int64
	for i := range r.shards {
		sh := &r.shards[i]
		sh.mu.Lock()
		n += sh.received
		sh.mu.Unlock()
	}
	return n
}

// takeSecond merges and clears the per-second histograms into into (which
// it resets first).
func (r *latencyRecorder) takeSecond(into *hdr.Histogram) {
	into.Reset()
	for i := range r.shards {
		sh := &r.shards[i]
		sh.mu.Lock()
		into.Merge(sh.second)
		sh.second.Reset()
		sh.mu.Unlock()
	}
}

// startWindow clears the measured window and starts recording into it.
func (r *latencyRecorder) startWindow() {
	for i := range r.shards {
		sh := &r.shards[i]
		sh.mu.Lock()
		sh.window.Reset()
		sh.measuring = true
		sh.mu.Unlock()
	}
}

// stopWindow stops recording and returns the merged window.
func (r *latencyRecorder) stopWindow() *hdr.Histogram {
	out := newLatencyHistogram()
	for i := range r.shards {
		sh := &r.shards[i]
		sh.mu.Lock()
		sh.measuring = false
		out.Merge(sh.window)
		sh.mu.Unlock()
	}
	return out
}
