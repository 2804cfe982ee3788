package reconcile

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/wsgate/wsgate/internal/jitter"
	"github.com/wsgate/wsgate/internal/tlsconf"
	"github.com/wsgate/wsgate/pool"
)

// Config tunes the reconcilers.
type Config struct {
	Pool            *pool.Pool
	Interval        time.Duration // safety-net tick, jittered +-10% (default 5 s)
	MinSpacing      time.Duration // least time between two runs of a worker (default 5 ms)
	DialConcurrency int           // dials in flight per worker, all backends together (default 16)
	DialsPerBackend int           // dials in flight per worker to one backend (default 4)
	// SocketBuffer is a backend socket's send and receive buffer (default
	// DefaultSocketBuffer; negative: the kernel's autotuning).
	SocketBuffer int
	// TLS is the configuration wss:// backends are dialed with (default:
	// verified against the system roots).
	TLS    *tlsconf.Client
	Logger *zap.Logger
}

// Reconciler runs one worker per shard. Start and Stop are
// safe for concurrent use.
type Reconciler struct {
	cfg     Config
	workers []*worker
	cancel  context.CancelFunc
	wg      sync.WaitGroup // the workers' goroutines (run)
}

// worker keeps one shard's pools at target. Its run goroutine owns the
// dial goroutines it starts and waits for them before it ends. Fields are
// set at creation, except signal (anyone sends), inFlight (run adds, each
// dial subtracts its own) and dials.
type worker struct {
	cfg    *Config
	shard  *pool.ShardPool
	log    *zap.Logger
	signal chan struct{} // size 1: sends never block, bursts coalesce

	dials    sync.WaitGroup // dial goroutines in flight
	inFlight atomic.Int32   // dial goroutines in flight, at most cfg.DialConcurrency
}

// Start launches a worker for every shard of cfg.Pool. The shards must be
// attached to their loops (the server started).
func Start(cfg Config) *Reconciler {
	if cfg.Interval <= 0 {
		cfg.Interval = 5 * time.Second
	}
	if cfg.MinSpacing <= 0 {
		cfg.MinSpacing = 5 * time.Millisecond
	}
	if cfg.DialConcurrency <= 0 {
		cfg.DialConcurrency = 16
	}
	if cfg.SocketBuffer == 0 {
		cfg.SocketBuffer = DefaultSocketBuffer
	}
	if cfg.DialsPerBackend <= 0 {
		cfg.DialsPerBackend = 4
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &Reconciler{cfg: cfg, cancel: cancel}
	for _, sh := range cfg.Pool.Shards() {
		w := &worker{cfg: &r.cfg, shard: sh, signal: make(chan struct{}, 1),
			log: cfg.Logger.With(zap.Int("shard", sh.Index))}
		sh.SetSignal(w.wake)
		r.workers = append(r.workers, w)
		r.wg.Add(1)
		go w.run(ctx, &r.wg)
	}
	return r
}

// Stop ends every worker and waits for them, dials in flight included:
// those are cancelled (connect and handshake alike) and their reservations
// given back, so the counters are exact when Stop returns.
func (r *Reconciler) Stop() {
	r.cancel()
	r.wg.Wait()
	for _, w := range r.workers {
		w.shard.SetSignal(func() {})
	}
}

func (w *worker) wake() {
	select {
	case w.signal <- struct{}{}:
	default: // a run is already pending: this event joins it
	}
}

// run is the worker goroutine, owned by the Reconciler (wg): one
// ensure-capacity step per signal burst, per backoff expiry of a backend
// it wants to dial, or per tick, until ctx ends; then it waits for its
// dials, which ctx cancels.
func (w *worker) run(ctx context.Context, wg *sync.WaitGroup) {
	defer wg.Done()
	defer w.dials.Wait()
	defer func() {
		if r := recover(); r != nil {
			w.log.Error("reconcile worker panicked; this shard's pools are no longer kept at target", zap.Any("panic", r))
		}
	}()
	select {
	case <-w.shard.Attached():
	case <-ctx.Done():
		return
	}
	next := time.NewTimer(0) // first run at once: fill the pools
	defer next.Stop()
	spacing := time.NewTimer(0)
	defer spacing.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-w.signal:
		case <-next.C:
		}
		wakeAt := w.safeEnsureCapacity(ctx)
		d := jitter.Scale(w.cfg.Interval, 0.1)
		if !wakeAt.IsZero() {
			// A little late rather than early: a run that finds the
			// backoff not quite over would only schedule another.
			d = min(d, time.Until(wakeAt)+time.Millisecond)
		}
		next.Reset(d)
		spacing.Reset(w.cfg.MinSpacing)
		select { // let a burst of signals gather
		case <-ctx.Done():
			return
		case <-spacing.C:
		}
	}
}

// safeEnsureCapacity is ensureCapacity with a recover, so one bad run
// does not end the worker.
func (w *worker) safeEnsureCapacity(ctx context.Context) (wakeAt time.Time) {
	defer func() {
		if r := recover(); r != nil {
			w.log.Error("reconcile run panicked", zap.Any("panic", r))
		}
	}()
	return w.ensureCapacity(ctx)
}

// ensureCapacity is the one authoritative step: sweep on the loop, then
// start dials for what each backend lacks in this shard (its share of the
// target, plus the sessions waiting), within Max, within the dial caps,
// and for an unhealthy backend only as its one probe, after its backoff.
// It does not wait for the dials: each one wakes the worker when it ends.
// It returns the earliest backoff end of a backend it wanted to dial, or
// the zero time.
func (w *worker) ensureCapacity(ctx context.Context) (wakeAt time.Time) {
	results, ok := w.sweep(ctx)
	if !ok {
		return
	}
	sh := w.shard
	shards := len(w.cfg.Pool.Shards())
	now := time.Now()
	// Waiting sessions belong to a group: spread each group's demand over
	// its healthy backends (over all of them if none is healthy).
	healthy := make(map[string]int)
	for _, r := range results {
		if dialable(r.Backend) && r.Backend.Healthy() {
			healthy[r.Backend.Group()]++
		}
	}
	prune := false
	for _, r := range results {
		b := r.Backend
		if r.Closed > 0 {
			w.log.Debug("closed idle connections", zap.String("backend", b.Settings().URL), zap.Int("closed", r.Closed))
		}
		if b.Removed() && b.Total.Load() == 0 {
			prune = true
		}
		if !dialable(b) {
			continue
		}
		st := b.Settings()
		dialing := r.Dialing // read with FreshIdle on the loop
		want := pool.Share(st.Target, shards, sh.Index)
		if h := healthy[b.Group()]; r.Waiting > 0 && (b.Healthy() || h == 0) {
			want += (r.Waiting + max(h, 1) - 1) / max(h, 1)
		}
		missing := want - r.FreshIdle - dialing
		if !b.Healthy() && missing <= 0 && dialing == 0 && sh.Index == 0 {
			// Nothing is missing, but only a dial that succeeds makes an
			// unhealthy backend healthy again: probe it (from one shard).
			missing = 1
		}
		room := min(missing, w.cfg.DialsPerBackend-dialing, w.cfg.DialConcurrency-int(w.inFlight.Load()))
		if room <= 0 || ctx.Err() != nil {
			continue // at target, or a dial that ends wakes this worker
		}
		probe := false
		if !b.Healthy() {
			if off, until := b.BackedOff(now); off {
				if wakeAt.IsZero() || until.Before(wakeAt) {
					wakeAt = until
				}
				continue
			}
			if !b.ClaimProbe(now) {
				continue // another probe is in flight; when it ends it wakes every worker
			}
			probe, room = true, 1
		}
		for i := 0; i < room; i++ {
			if !b.Reserve(sh.Index) {
				if probe {
					b.ReleaseProbe()
				}
				if b.NoteAtMax() {
					w.log.Warn("backend at its connection cap: sessions past it wait, then get 1013 (raise -pool-max or max_conns)",
						zap.String("backend", b.Settings().URL), zap.Int("max", b.Settings().Max))
				}
				break // at Max
			}
			w.inFlight.Add(1)
			w.dials.Add(1)
			go w.dial(ctx, b, time.Now(), probe)
		}
	}
	if prune { // a removed backend's last connection is gone: drop it
		w.cfg.Pool.Prune()
	}
	return wakeAt
}

// dial is a dial goroutine, owned by its worker (run waits for it): it
// dials one connection of b reserved for this shard at started, and
// enrolls it. probe says it holds b's probe claim. When it ends, however
// it ends, the reservation has been consumed or given back, the claim
// released, and the worker woken (every worker, after a probe) to
// re-evaluate.
func (w *worker) dial(ctx context.Context, b *pool.Backend, started time.Time, probe bool) {
	reserved := true // the reservation is still ours to give back
	defer w.dialEnded(b, probe, &reserved)
	dialed, err := Dial(ctx, b, DialOptions{Timeout: b.Settings().DialTimeout, SocketBuffer: max(w.cfg.SocketBuffer, 0), TLS: w.cfg.TLS})
	if err != nil {
		reserved = false
		if ctx.Err() != nil {
			b.DialAborted(w.shard.Index) // stopping: not the backend's fault
			return
		}
		wasHealthy := b.Healthy()
		if b.DialFailed(w.shard.Index, err, started, time.Now()) && wasHealthy {
			_, until := b.BackedOff(time.Now())
			w.log.Warn("backend dial failed; probing it until a dial succeeds",
				zap.String("backend", b.Settings().URL), zap.Error(err), zap.Time("first_probe", until))
		}
		return
	}
	wasHealthy := b.Healthy()
	reserved = false // Enroll consumes it, or gives it back
	if err := w.shard.Enroll(ctx, b, dialed.TCP, dialed.TLS, dialed.Protocol); err != nil {
		w.log.Debug("enroll failed", zap.String("backend", b.Settings().URL), zap.Error(err))
		return
	}
	if !wasHealthy {
		w.log.Info("backend reachable again", zap.String("backend", b.Settings().URL))
	}
}

// dialEnded is dial's deferred end: it logs a panic, gives back a
// reservation the dial still held, releases the probe claim and wakes the
// workers that may dial next.
func (w *worker) dialEnded(b *pool.Backend, probe bool, reserved *bool) {
	if r := recover(); r != nil {
		w.log.Error("dial panicked", zap.String("backend", b.Settings().URL), zap.Any("panic", r))
		if *reserved {
			b.DialAborted(w.shard.Index)
		}
	}
	if probe {
		b.ReleaseProbe()
	}
	w.inFlight.Add(-1)
	if probe {
		// The backend is healthy now, or backed off for longer: every
		// shard's worker re-evaluates (the probe was only one shard's).
		for _, sh := range w.cfg.Pool.Shards() {
			sh.Signal()
		}
	} else {
		w.wake()
	}
	w.dials.Done()
}

// sweep runs the loop-side step and waits for its result.
func (w *worker) sweep(ctx context.Context) ([]pool.SweepResult, bool) {
	done := make(chan []pool.SweepResult, 1)
	if err := w.shard.Run(func() { done <- w.shard.Sweep() }); err != nil {
		return nil, false
	}
	select {
	case r := <-done:
		return r, true
	case <-ctx.Done():
		return nil, false
	}
}

func dialable(b *pool.Backend) bool { return b.KeepsConnections() }
