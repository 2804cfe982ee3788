package loadtest

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
)

// Options is one invocation: a scenario run against one or more proxies.
type Options struct {
	Scenario   Scenario
	Kinds      []string // proxies, run one after the other
	URL        string   // KindURL: where the proxy listens
	PID        int      // KindURL: its process, to measure (0 = not measured)
	Commands   Commands
	WsgateArgs []string    // extra flags for the wsgate gateway
	TLS        *TLSOptions // clients speak wss:// to the front (wsgate and nginx only); nil: ws://
	LogDir     string      // child logs and generated configs, one folder per run
	PprofDir   string      // CPU and heap profiles of Go proxies ("" = none)
	Progress   io.Writer   // the live line, once a second (nil = quiet)
}

// Run runs the scenario against each proxy in turn. A proxy that cannot
// run gets a Result with Failed set; the others still run.
func Run(o Options) []*Result {
	var tlsFiles *tlsMaterials
	if o.TLS != nil {
		var err error
		if tlsFiles, err = newTLSMaterials(o.TLS); err != nil {
			var out []*Result
			for _, kind := range o.Kinds {
				out = append(out, &Result{Name: kind, Scenario: o.Scenario, TLS: &TLSResult{Version: o.TLS.versionName()}, Failed: err.Error()})
			}
			return out
		}
		defer tlsFiles.remove()
	}
	var out []*Result
	for _, kind := range o.Kinds {
		out = append(out, runOne(o, kind, tlsFiles))
	}
	return out
}

// drainWait bounds the wait for echoes still in flight after the window.
const drainWait = 5 * time.Second

// run is the state of one proxy's run, owned by the goroutine of runOne.
type run struct {
	o        Options
	tlsFiles *tlsMaterials // the run's certificate and client configuration; nil: plain
	sc       Scenario
	res      *Result
	gen      *generator
	tgt      *target
	backends *backendSet
	start    time.Time // first dial: the chart's zero
	prev     snapshot  // the previous second's snapshot
	second   *hdr.Histogram
	maxRSS   uint64
}

func runOne(o Options, kind string, tlsFiles *tlsMaterials) *Result {
	sc := o.Scenario
	res := &Result{Name: kind, Scenario: sc, Machine: MachineResult{Cores: runtime.NumCPU()}}
	if kind == KindWsgate || kind == KindGoroutine {
		res.PoolSize = sc.poolSize()
	}
	if tlsFiles != nil {
		res.TLS = tlsFiles.requested() // until the probe says what was negotiated
	}
	r := &run{o: o, tlsFiles: tlsFiles, sc: sc, res: res, second: newLatencyHistogram()}
	if err := r.execute(kind); err != nil {
		res.Failed = err.Error()
		r.printf("%s: FAILED: %v\n", r.label(), err)
	}
	analyze(res)
	return res
}

func (r *run) label() string { return r.sc.Name + "/" + r.res.Name }

func (r *run) printf(format string, args ...any) {
	if r.o.Progress != nil {
		fmt.Fprintf(r.o.Progress, format, args...)
	}
}

// execute runs the phases: start, settle, baseline, connect, warm-up,
// measure, drain, close, stop. Every process it starts is stopped before
// it returns.
func (r *run) execute(kind string) error {
	sc := r.sc
	if err := sc.validate(); err != nil {
		return err
	}
	if !validKind(kind) {
		return fmt.Errorf("loadtest: unknown proxy %q (want one of wsgate, goroutine, nginx, direct, url)", kind)
	}
	if err := sc.fdBudget(kind, openFileLimit()); err != nil {
		return err
	}
	logDir := filepath.Join(r.o.LogDir, sc.Name+"-"+kind)
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return fmt.Errorf("loadtest: log dir: %w", err)
	}
	r.printf("%s: starting (%d backends, logs in %s)\n", r.label(), sc.Backends, logDir)

	if kind != KindURL {
		b, err := startBackends(r.o.Commands, sc.Backends, logDir)
		if err != nil {
			return err
		}
		r.backends = b
		defer b.stop()
	}
	tgt, err := startTarget(r.o.Commands, targetSpec{
		kind: kind, poolSize: r.res.PoolSize, url: r.o.URL, pid: r.o.PID,
		extraArgs: r.o.WsgateArgs, tls: r.tlsFiles, logDir: logDir,
	}, r.backends)
	if err != nil {
		return err
	}
	r.tgt = tgt
	r.res.TLS = tgt.tls
	defer tgt.stop()

	groups := []procGroup{tgt.group}
	if r.backends != nil {
		groups = append(groups, r.backends.group())
	}
	if quiet, err := settle(groups, sc.Settle); err != nil {
		return err
	} else if !quiet {
		r.warn("the processes were still busy %v after start; the idle baseline may include start-up work", sc.Settle)
	}

	gen, err := newGenerator(genConfig{
		Conns: sc.Conns, Size: sc.Size, Binary: sc.Binary, Rate: sc.Rate, DialRate: sc.DialRate,
		URLs: tgt.urls, TLS: r.clientTLS(), Senders: sc.Senders,
	})
	if err != nil {
		return err
	}
	r.gen = gen
	connectCtx, cancelConnect := context.WithCancel(context.Background())
	defer func() {
		cancelConnect()
		gen.stopSenders()
		gen.closeAll(3 * time.Second)
	}()
	return r.drive(connectCtx)
}

// drive runs the load phases once everything is up: baseline, connect,
// warm-up, measure, drain, record.
func (r *run) drive(connectCtx context.Context) error {
	baseline, err := r.takeBaseline()
	if err != nil {
		return err
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	if err := r.connect(connectCtx, tick, baseline); err != nil {
		return err
	}
	if err := r.warmUp(tick); err != nil {
		return err
	}
	m, err := r.measure(tick)
	if err != nil {
		return err
	}
	if m.final, err = r.drain(); err != nil {
		return err
	}
	for _, w := range m.profiles() {
		r.warn("%s", w)
	}
	r.record(m)
	r.printf("%s: done: %s\n", r.label(), oneLineSummary(r.res))
	return nil
}

// takeBaseline reads the idle processes before the first dial: the zero
// that memory per session is counted from.
func (r *run) takeBaseline() (snapshot, error) {
	baseline, err := r.snap()
	if err != nil {
		return baseline, err
	}
	r.res.Proxy.Baseline, r.res.Backends.Baseline = baseline.Proxy.RSS, baseline.Backends.RSS
	r.prev, r.maxRSS = baseline, baseline.Proxy.RSS
	if r.sc.Rate <= 0 {
		r.gen.lat.startWindow() // at rate 0 the one echo per session is the latency sample
	}
	return baseline, nil
}

// connect dials every session now (or at DialRate), waits at most
// ConnectWait for the dials to finish and records how the sessions opened.
// It fails when none did.
func (r *run) connect(ctx context.Context, tick *time.Ticker, baseline snapshot) error {
	sc, gen, res := r.sc, r.gen, r.res
	r.start = time.Now()
	// The chart starts from the idle proxy, before the first dial.
	res.Series = append(res.Series, Point{Phase: "baseline", ProxyRSS: baseline.Proxy.RSS})
	dialStart := gen.now()
	gen.connect(ctx)
	connectLimit := time.NewTimer(sc.ConnectWait)
	defer connectLimit.Stop()
wait:
	for {
		select {
		case <-gen.allDialed:
			break wait
		case <-tick.C:
			if _, err := r.step("connect"); err != nil {
				return err
			}
		case <-connectLimit.C:
			r.warn("only %d of %d dials finished within %v", gen.dialsDone.Load(), sc.Conns, sc.ConnectWait)
			break wait
		}
	}
	connected, err := r.snap()
	if err != nil {
		return err
	}
	opened := gen.opened.Load()
	res.Sessions = SessionResult{
		Target:     sc.Conns,
		Opened:     opened,
		Setup:      gen.setupSummary(),
		AllOpenSec: (time.Duration(gen.lastOpen.Load()) - dialStart).Seconds(),
	}
	if opened > 0 && !r.tgt.group.empty() {
		res.Sessions.ProxyCPUPerSession = float64((connected.Proxy.CPU - baseline.Proxy.CPU).Microseconds()) / float64(opened)
	}
	if opened > 0 && r.backends != nil {
		res.Sessions.BackendsCPUPerSession = float64((connected.Backends.CPU - baseline.Backends.CPU).Microseconds()) / float64(opened)
	}
	if opened == 0 {
		return fmt.Errorf("no session opened: %s", describeCounts(gen.dialErrs.snapshot()))
	}
	return nil
}

// warmUp starts sending and runs for the scenario's warm-up.
func (r *run) warmUp(tick *time.Ticker) error {
	r.gen.startSenders()
	return r.phase("warmup", r.sc.Warmup, tick)
}

// measurement is what the measured window leaves for record.
type measurement struct {
	w0, w1   snapshot       // the window's first and last readings
	final    snapshot       // after the drain
	latency  *hdr.Histogram // round trips in the window
	skipped0 int64          // the generator's skipped slots at w0
	rssAvg   uint64         // the proxy's RSS, averaged over the window's seconds
	profiles func() []string
}

// measure runs the measured window (capturing profiles, if asked) and
// stops sending at its end.
func (r *run) measure(tick *time.Ticker) (measurement, error) {
	gen := r.gen
	if r.sc.Rate > 0 {
		gen.lat.startWindow() // just before w0: the window's count is the throughput
	}
	var m measurement
	var err error
	if m.w0, err = r.snap(); err != nil {
		return m, err
	}
	m.skipped0 = gen.skippedSlots()
	m.profiles = r.startPprof()
	var rssSum, rssN uint64
	err = r.phaseEach("measure", r.sc.Duration, tick, func(s snapshot) {
		rssSum += s.Proxy.RSS
		rssN++
	})
	if err != nil {
		return m, err
	}
	m.latency = gen.lat.stopWindow()
	if m.w1, err = r.snap(); err != nil {
		return m, err
	}
	if rssN == 0 {
		rssSum, rssN = m.w1.Proxy.RSS, 1
	}
	m.rssAvg = rssSum / rssN
	r.res.Sessions.OpenAtEnd = m.w1.Open
	gen.stopSenders()
	return m, nil
}

// drain gives the echoes in flight a bounded time to arrive, then reads
// the counters once more.
func (r *run) drain() (snapshot, error) {
	deadline := time.Now().Add(drainWait)
	for r.gen.outstanding() > 0 && time.Now().Before(deadline) {
		time.Sleep(pollInterval)
	}
	return r.snap()
}

// record turns the window's readings into the result's traffic, costs and
// errors.
func (r *run) record(m measurement) {
	sc, gen, res := r.sc, r.gen, r.res
	w0, w1 := m.w0, m.w1
	elapsed := w1.At.Sub(w0.At)
	received := w1.Received - w0.Received // at rate 0: echoes in the idle window (none expected)
	if sc.Rate > 0 {
		received = m.latency.TotalCount()
	}
	res.Traffic = TrafficResult{
		TargetRate: sc.TargetRate(),
		Throughput: float64(received) / elapsed.Seconds(),
		Sent:       w1.Sent - w0.Sent,
		Received:   received,
		Skipped:    gen.skippedSlots() - m.skipped0,
		Latency:    summarize(m.latency),
		WindowSec:  elapsed.Seconds(),
	}
	res.Proxy = procResult(r.tgt.group, w0.Proxy, w1.Proxy, m.final.Proxy, elapsed, received, res.Proxy.Baseline, m.rssAvg, w1.Open)
	res.Proxy.RSSSampled = r.maxRSS
	res.Backends = procResult(r.backendGroup(), w0.Backends, w1.Backends, m.final.Backends, elapsed, received, res.Backends.Baseline, w1.Backends.RSS, w1.Open)
	res.Client = ProcResult{Measured: true, Procs: 1, CPUSeconds: (w1.Self - w0.Self).Seconds(), Cores: cores(w1.Self-w0.Self, elapsed)}
	if received > 0 {
		res.Client.CPUPerMsg = float64((w1.Self - w0.Self).Microseconds()) / float64(received)
	}
	res.Machine.Busy = machineBusy(w0.Machine, w1.Machine)
	res.Machine.Other = max(0, machineTaskCores(w0.Machine, w1.Machine, res.Machine.Cores)-res.Proxy.Cores-res.Backends.Cores-res.Client.Cores)
	res.Errors = ErrorResult{
		DialErrors:       gen.dialErrs.snapshot(),
		UnexpectedCloses: gen.closes.snapshot(),
		WriteErrors:      gen.writeErrs.snapshot(),
		BadEchoes:        gen.badEchoes.snapshot(),
		Lost:             gen.outstanding(),
	}
}

// clientTLS is the clients' TLS configuration (nil for plain runs).
func (r *run) clientTLS() *tls.Config {
	if r.tlsFiles == nil {
		return nil
	}
	return r.tlsFiles.client
}

func (r *run) backendGroup() procGroup {
	if r.backends == nil {
		return procGroup{}
	}
	return r.backends.group()
}

// procResult turns the window's readings of a group into its cost.
func procResult(g procGroup, w0, w1, final usage, elapsed time.Duration, msgs int64, baseline, rssAvg uint64, sessions int64) ProcResult {
	if g.empty() {
		return ProcResult{}
	}
	cpu := w1.CPU - w0.CPU
	p := ProcResult{
		Measured:   true,
		Procs:      w1.Procs,
		CPUSeconds: cpu.Seconds(),
		Cores:      cores(cpu, elapsed),
		Baseline:   baseline,
		RSSAvg:     rssAvg,
		RSSPeak:    final.HWM,
	}
	if msgs > 0 {
		p.CPUPerMsg = float64(cpu.Microseconds()) / float64(msgs)
	}
	if sessions > 0 {
		p.RSSTotalPerSession = float64(rssAvg) / float64(sessions)
		if rssAvg > baseline {
			p.RSSPerSession = float64(rssAvg-baseline) / float64(sessions)
		}
	}
	return p
}

// phase runs for d, one live line a second.
func (r *run) phase(name string, d time.Duration, tick *time.Ticker) error {
	return r.phaseEach(name, d, tick, func(snapshot) {})
}

// phaseEach runs for d, one live line a second, handing each second's
// snapshot to each.
func (r *run) phaseEach(name string, d time.Duration, tick *time.Ticker, each func(snapshot)) error {
	end := time.NewTimer(d)
	defer end.Stop()
	for {
		select {
		case <-end.C:
			return nil
		case <-tick.C:
			s, err := r.step(name)
			if err != nil {
				return err
			}
			each(s)
		}
	}
}

// snap reads every counter once; a dead proxy or backend is an error that
// ends the run loudly.
func (r *run) snap() (snapshot, error) {
	s := snapshot{At: time.Now(), Self: selfCPU()}
	if r.gen != nil {
		s.Received, s.Sent, s.Open = r.gen.lat.received(), r.gen.sent(), r.gen.openNow.Load()
	}
	var err error
	if !r.tgt.group.empty() {
		if s.Proxy, err = r.tgt.group.sample(); err != nil {
			if r.tgt.proc != nil && !r.tgt.proc.alive() {
				return s, fmt.Errorf("the proxy died during the run: %w", r.tgt.proc.deathError())
			}
			return s, err
		}
	}
	if r.backends != nil {
		if err := r.backends.alive(); err != nil {
			return s, fmt.Errorf("a backend died during the run: %w", err)
		}
		if s.Backends, err = r.backends.group().sample(); err != nil {
			return s, err
		}
	}
	if s.Machine, err = readMachineCPU(); err != nil {
		return s, err
	}
	r.maxRSS = max(r.maxRSS, s.Proxy.RSS)
	return s, nil
}

// step takes this second's snapshot, appends a point to the series and
// prints the live line.
func (r *run) step(phase string) (snapshot, error) {
	cur, err := r.snap()
	if err != nil {
		return cur, err
	}
	prev := r.prev
	r.prev = cur
	dt := cur.At.Sub(prev.At)
	r.gen.lat.takeSecond(r.second)
	p := Point{
		T:         cur.At.Sub(r.start).Seconds(),
		Phase:     phase,
		Open:      cur.Open,
		MsgPerSec: float64(cur.Received-prev.Received) / dt.Seconds(),
		P99:       r.second.ValueAtQuantile(99),
		ProxyCPU:  cores(cur.Proxy.CPU-prev.Proxy.CPU, dt),
		ProxyRSS:  cur.Proxy.RSS,
		ClientCPU: cores(cur.Self-prev.Self, dt),
		Busy:      machineBusy(prev.Machine, cur.Machine),
	}
	if r.second.TotalCount() == 0 {
		p.P99 = 0
	}
	r.res.Series = append(r.res.Series, p)
	r.printf("%s\n", progressLine(r.label(), p, r.sc.Conns, !r.tgt.group.empty()))
	return cur, nil
}

func (r *run) warn(format string, args ...any) {
	w := fmt.Sprintf(format, args...)
	r.res.Warnings = append(r.res.Warnings, w)
	r.printf("%s: warning: %s\n", r.label(), w)
}

// startPprof starts capturing the proxy's CPU profile over the measured
// window (and a heap profile at its end) when the proxy has an admin
// endpoint; the returned function waits and reports problems.
func (r *run) startPprof() (wait func() []string) {
	if r.o.PprofDir == "" {
		return func() []string { return nil }
	}
	if r.tgt.admin == "" {
		return func() []string {
			return []string{fmt.Sprintf("-pprof: %s has no pprof endpoint; nothing captured", r.res.Name)}
		}
	}
	return capturePprof(r.tgt.admin, r.o.PprofDir, r.sc.Name+"-"+r.res.Name, r.sc.Duration)
}
