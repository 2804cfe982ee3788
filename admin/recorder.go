package admin

import (
	"strconv"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wsgate/wsgate/server"
)

// maxReasons bounds the CloseReason values the Recorder counts; the server
// has fewer (reasonNames lists them), anything above lands in "unknown".
const maxReasons = 64

// reasonNames are the names of every server.CloseReason, by value, read
// once from the server's own String method.
var reasonNames = func() []string {
	var names []string
	for r := 0; r < maxReasons; r++ {
		n := server.CloseReason(r).String()
		if n == "unknown" {
			break
		}
		names = append(names, n)
	}
	return names
}()

// Close code buckets: 1000..1015 one by one, then 3000-3999 (registered
// codes), 4000-4999 (private codes) and anything else.
const (
	codeFirst   = 1000
	codeLast    = 1015
	codeBuckets = codeLast - codeFirst + 1 + 3
)

func codeBucket(code uint16) int {
	switch {
	case code >= codeFirst && code <= codeLast:
		return int(code - codeFirst)
	case code >= 3000 && code <= 3999:
		return codeLast - codeFirst + 1
	case code >= 4000 && code <= 4999:
		return codeLast - codeFirst + 2
	}
	return codeLast - codeFirst + 3
}

func codeLabel(i int) string {
	switch i {
	case codeLast - codeFirst + 1:
		return "3xxx"
	case codeLast - codeFirst + 2:
		return "4xxx"
	case codeLast - codeFirst + 3:
		return "other"
	}
	return strconv.Itoa(codeFirst + i)
}

// closeSides are the three places a session's close code comes from.
var closeSides = [...]string{"sent", "received", "backend"}

// codeCounts counts close codes of one side. Safe for concurrent use.
type codeCounts [codeBuckets]atomic.Int64

func (c *codeCounts) add(code uint16) {
	if code != 0 {
		c[codeBucket(code)].Add(1)
	}
}

// DurationBuckets are the session duration histogram's upper bounds, in
// seconds: sessions last from a moment (a refused or failed one) to hours.
var DurationBuckets = []float64{0.01, 0.1, 0.5, 1, 5, 15, 30, 60, 300, 900, 1800, 3600, 4 * 3600, 12 * 3600}

// Recorder keeps what only the end of a session tells: its outcome, its
// close codes and its duration. Record runs on the event loop once per
// session (atomic adds and a lock-free histogram observation); the rest is
// read at scrape time. Safe for concurrent use.
type Recorder struct {
	outcomes [maxReasons + 1]atomic.Int64 // sessions ended, by CloseReason; the last is "unknown"
	codes    [len(closeSides)]codeCounts  // by side: sent to the client, received from it, backend's
	duration prometheus.Histogram         // session duration, seconds

	outcomeDesc *prometheus.Desc
	codeDesc    *prometheus.Desc
}

// NewRecorder returns an empty Recorder.
func NewRecorder() *Recorder {
	return &Recorder{
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "wsgate_session_duration_seconds",
			Help:    "Duration of upgraded sessions, from accept to close.",
			Buckets: DurationBuckets,
		}),
		outcomeDesc: prometheus.NewDesc("wsgate_sessions_ended_total",
			"Upgraded sessions that ended, by outcome (the close reason).", []string{"outcome"}, nil),
		codeDesc: prometheus.NewDesc("wsgate_session_close_codes_total",
			"Close codes of ended sessions: sent to the client, received from it, or the backend's when its connection failed under the session.",
			[]string{"side", "code"}, nil),
	}
}

// Record counts one ended session. Loop-safe: it never blocks.
func (r *Recorder) Record(rec *server.SessionRecord) {
	i := int(rec.Reason)
	if i >= len(reasonNames) {
		i = maxReasons
	}
	r.outcomes[i].Add(1)
	r.codes[0].add(rec.CloseSent)
	r.codes[1].add(rec.CloseRecv)
	r.codes[2].add(rec.BackendClose)
	r.duration.Observe(rec.Duration.Seconds())
}

// Outcomes returns the sessions ended so far by outcome name (only
// outcomes seen at least once).
func (r *Recorder) Outcomes() map[string]int64 {
	out := make(map[string]int64)
	for i, name := range reasonNames {
		if n := r.outcomes[i].Load(); n > 0 {
			out[name] = n
		}
	}
	if n := r.outcomes[maxReasons].Load(); n > 0 {
		out["unknown"] = n
	}
	return out
}

// CloseCodes returns the close codes seen so far, by side then code label.
func (r *Recorder) CloseCodes() map[string]map[string]int64 {
	out := make(map[string]map[string]int64, len(closeSides))
	for s, side := range closeSides {
		m := make(map[string]int64)
		for i := range r.codes[s] {
			if n := r.codes[s][i].Load(); n > 0 {
				m[codeLabel(i)] = n
			}
		}
		out[side] = m
	}
	return out
}

// Describe is part of prometheus.Collector.
func (r *Recorder) Describe(ch chan<- *prometheus.Desc) {
	ch <- r.outcomeDesc
	ch <- r.codeDesc
	r.duration.Describe(ch)
}

// Collect is part of prometheus.Collector: it reads the atomics now.
func (r *Recorder) Collect(ch chan<- prometheus.Metric) {
	for i, name := range reasonNames {
		ch <- prometheus.MustNewConstMetric(r.outcomeDesc, prometheus.CounterValue, float64(r.outcomes[i].Load()), name)
	}
	if n := r.outcomes[maxReasons].Load(); n > 0 {
		ch <- prometheus.MustNewConstMetric(r.outcomeDesc, prometheus.CounterValue, float64(n), "unknown")
	}
	for s, side := range closeSides {
		for i := range r.codes[s] {
			if n := r.codes[s][i].Load(); n > 0 {
				ch <- prometheus.MustNewConstMetric(r.codeDesc, prometheus.CounterValue, float64(n), side, codeLabel(i))
			}
		}
	}
	r.duration.Collect(ch)
}
