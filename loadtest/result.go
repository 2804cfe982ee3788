package loadtest

// Result is everything one run of one proxy measured. Byte sizes are
// bytes, CPU is in seconds or cores (1.0 = one core busy), latencies in
// microseconds. It is what -json writes.
type Result struct {
	Name     string   `json:"proxy"` // the proxy kind
	Scenario Scenario `json:"scenario"`
	PoolSize int      `json:"pool_size,omitempty"` // per backend, pooled proxies
	// TLS is what the clients negotiated with the front in a -tls run
	// (nil: plain ws://).
	TLS      *TLSResult `json:"tls,omitempty"`
	Failed   string     `json:"failed,omitempty"`   // why the run stopped early; the figures are partial
	Warnings []string   `json:"warnings,omitempty"` // things the reader of the table must know

	Sessions SessionResult `json:"sessions"`
	Traffic  TrafficResult `json:"traffic"`
	Proxy    ProcResult    `json:"proxy_process"` // not measured for direct
	Backends ProcResult    `json:"backends"`
	Client   ProcResult    `json:"loadtest"` // the load generator's own cost
	Machine  MachineResult `json:"machine"`
	Errors   ErrorResult   `json:"errors"`
	Series   []Point       `json:"series"`
}

// SessionResult is about opening sessions.
type SessionResult struct {
	Target     int         `json:"target"`
	Opened     int64       `json:"opened"`
	OpenAtEnd  int64       `json:"open_at_end"` // still open when the measured window ended
	Setup      Percentiles `json:"setup"`       // dial start to 101 Switching Protocols
	AllOpenSec float64     `json:"all_open_s"`  // first dial to last session open
	// ProxyCPUPerSession is the proxy's CPU (nginx: master and workers;
	// never the backends) from the idle baseline just before the first
	// dial to the reading taken once every dial finished, divided by the
	// sessions opened, in microseconds. With TLS the handshakes are in it.
	// At rate 0 each session sends its one message as soon as it is open,
	// so the relaying of those that came back before the last dial ended
	// is in it too; at a positive rate sending starts after it.
	ProxyCPUPerSession float64 `json:"proxy_cpu_per_session_us"`
	// BackendsCPUPerSession is the same for the backends: the upgrades of
	// a proxy that dials a backend per session (nginx) are here; a pooled
	// proxy's backends did theirs before the baseline.
	BackendsCPUPerSession float64 `json:"backends_cpu_per_session_us"`
}

// TrafficResult is about the measured window.
type TrafficResult struct {
	TargetRate float64     `json:"target_msg_s"`
	Throughput float64     `json:"msg_s"` // echoes received per second in the window
	Sent       int64       `json:"sent"`  // in the window
	Received   int64       `json:"received"`
	Skipped    int64       `json:"skipped"` // sends dropped because the generator fell behind
	Latency    Percentiles `json:"latency"`
	WindowSec  float64     `json:"window_s"`
}

// ProcResult is the cost of a process group over the measured window.
type ProcResult struct {
	Measured   bool    `json:"measured"`
	Procs      int     `json:"procs,omitempty"`
	CPUSeconds float64 `json:"cpu_s"`
	Cores      float64 `json:"cores"`                 // average cores busy in the window
	CPUPerMsg  float64 `json:"cpu_per_msg_us"`        // CPU per round-tripped message
	Baseline   uint64  `json:"rss_baseline_bytes"`    // idle, before any session
	RSSAvg     uint64  `json:"rss_avg_bytes"`         // mean of the per-second samples in the window
	RSSPeak    uint64  `json:"rss_peak_bytes"`        // VmHWM (summed over processes for nginx)
	RSSSampled uint64  `json:"rss_max_sampled_bytes"` // largest per-second sample from baseline to the end
	// RSSPerSession is (RSSAvg - Baseline) / sessions open: what one more
	// session costs. A pooled proxy's pool is in its baseline.
	RSSPerSession float64 `json:"rss_per_session_bytes"`
	// RSSTotalPerSession is RSSAvg / sessions open: everything, pool
	// included, shared out over the sessions.
	RSSTotalPerSession float64 `json:"rss_total_per_session_bytes"`
}

// MachineResult describes where the window's CPU went on the whole machine.
type MachineResult struct {
	Cores int     `json:"cores"`
	Busy  float64 `json:"busy"` // share of all cores busy in the window, 0..1
	// Other is the cores used by processes outside the run (the machine's
	// user and system time minus proxy, backends and loadtest): anything
	// well above zero means the figures were disturbed.
	Other float64 `json:"other_cores"`
}

// ErrorResult counts everything that went wrong; zero is expected.
type ErrorResult struct {
	DialErrors       map[string]int64 `json:"dial_errors,omitempty"`
	UnexpectedCloses map[string]int64 `json:"unexpected_closes,omitempty"`
	WriteErrors      map[string]int64 `json:"write_errors,omitempty"`
	BadEchoes        map[string]int64 `json:"bad_echoes,omitempty"`
	Lost             int64            `json:"lost"` // sent but never echoed, after the drain
}

// Total is every error counted.
func (e ErrorResult) Total() int64 {
	n := e.Lost
	for _, m := range []map[string]int64{e.DialErrors, e.UnexpectedCloses, e.WriteErrors, e.BadEchoes} {
		for _, v := range m {
			n += v
		}
	}
	return n
}

// Point is one second of a run, for the live line and the chart.
type Point struct {
	T         float64 `json:"t_s"` // since the first dial
	Phase     string  `json:"phase"`
	Open      int64   `json:"open"`
	MsgPerSec float64 `json:"msg_s"`
	P99       int64   `json:"p99_us"`
	ProxyCPU  float64 `json:"proxy_cores"`
	ProxyRSS  uint64  `json:"proxy_rss_bytes"`
	ClientCPU float64 `json:"loadtest_cores"`
	Busy      float64 `json:"machine_busy"`
}
