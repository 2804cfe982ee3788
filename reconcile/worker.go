package reconcile

import (
	"context"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/panjf2000/gnet/v2"
	"go.uber.org/zap"

	"github.com/wsgate/wsgate/pool"
)

// Config tunes the reconcilers.
type Config struct {
	Pool            *pool.Pool
	Interval        time.Duration // safety-net tick, jittered +-10% (default 5 s)
	MinSpacing      time.Duration // least time between two runs of a worker (default 5 ms)
	DialConcurrency int           // dials in flight per worker (default 16)
	Logger          *zap.Logger
}

// Reconciler runs one worker per shard. Start and Stop are
// safe for concurrent use.
type Reconciler struct {
	cfg     Config
	workers []*worker
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

// worker keeps one shard's pools at target. Its fields are owned by its
// goroutine, except signal (anyone sends).
type worker struct {
	cfg    *Config
	shard  *pool.Shard
	signal chan struct{} // size 1: sends never block, bursts coalesce
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
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &Reconciler{cfg: cfg, cancel: cancel}
	for _, sh := range cfg.Pool.Shards() {
		w := &worker{cfg: &r.cfg, shard: sh, signal: make(chan struct{}, 1)}
		sh.SetSignal(w.wake)
		r.workers = append(r.workers, w)
		r.wg.Add(1)
		go w.run(ctx, &r.wg)
	}
	return r
}

// Stop ends every worker and waits for them, dials in flight included.
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

// run is the worker goroutine: one ensure-capacity step per signal burst
// or tick, until ctx ends.
func (w *worker) run(ctx context.Context, wg *sync.WaitGroup) {
	defer wg.Done()
	log := w.cfg.Logger.With(zap.Int("shard", w.shard.Index))
	select {
	case <-w.shard.Attached():
	case <-ctx.Done():
		return
	}
	tick := time.NewTimer(0) // first run at once: fill the pools
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-w.signal:
		case <-tick.C:
		}
		w.safeEnsureCapacity(ctx, log)
		tick.Reset(jitter(w.cfg.Interval, 0.1))
		select { // let a burst of signals gather
		case <-ctx.Done():
			return
		case <-time.After(w.cfg.MinSpacing):
		}
	}
}

func (w *worker) safeEnsureCapacity(ctx context.Context, log *zap.Logger) {
	defer func() {
		if r := recover(); r != nil {
			log.Error("reconcile run panicked", zap.Any("panic", r))
		}
	}()
	w.ensureCapacity(ctx, log)
}

// ensureCapacity is the one authoritative step: sweep on the loop, then
// dial what each backend lacks in this shard (its share of the target,
// plus the sessions waiting), within Max and outside backoff.
func (w *worker) ensureCapacity(ctx context.Context, log *zap.Logger) {
	results, ok := w.sweep(ctx)
	if !ok {
		return
	}
	sh := w.shard
	shards := len(w.cfg.Pool.Shards())
	// Waiting sessions belong to a group: spread each group's demand over
	// its healthy backends (over all of them if none is healthy).
	healthy := make(map[string]int)
	for _, r := range results {
		if dialable(r.Backend) && r.Backend.Healthy() {
			healthy[r.Backend.Group()]++
		}
	}
	var wg sync.WaitGroup
	sem := make(chan struct{}, w.cfg.DialConcurrency)
	for _, r := range results {
		b := r.Backend
		if r.Closed > 0 {
			log.Debug("closed idle connections", zap.String("backend", b.Settings().URL), zap.Int("closed", r.Closed))
		}
		if !dialable(b) {
			continue
		}
		st := b.Settings()
		want := share(st.Target, shards, sh.Index)
		if h := healthy[b.Group()]; r.Waiting > 0 && (b.Healthy() || h == 0) {
			want += (r.Waiting + max(h, 1) - 1) / max(h, 1)
		}
		missing := want - r.FreshIdle - int(b.Slot(sh.Index).Dialing.Load())
		if !b.Healthy() && missing <= 0 && sh.Index == 0 {
			// Nothing is missing, but only a dial that succeeds makes an
			// unhealthy backend healthy again: probe it (from one shard).
			missing = 1
		}
		if missing <= 0 {
			continue
		}
		if off, until := b.BackedOff(time.Now()); off {
			log.Debug("backend backed off", zap.String("backend", st.URL), zap.Time("until", until))
			continue
		}
		var failed atomic.Bool
		for i := 0; i < missing && !failed.Load() && ctx.Err() == nil; i++ {
			if !b.Reserve(sh.Index) {
				break // at Max
			}
			sem <- struct{}{}
			wg.Add(1)
			go w.dialOne(ctx, b, st.DialTimeout, &failed, sem, &wg, log)
		}
	}
	wg.Wait()
}

// dialOne dials one reserved connection and enrolls it.
func (w *worker) dialOne(ctx context.Context, b *pool.Backend, timeout time.Duration, failed *atomic.Bool,
	sem chan struct{}, wg *sync.WaitGroup, log *zap.Logger) {
	defer wg.Done()
	defer func() { <-sem }()
	if failed.Load() {
		b.DialAborted(w.shard.Index)
		return
	}
	started := time.Now()
	nc, err := Dial(ctx, b, timeout)
	if err != nil {
		if ctx.Err() != nil {
			b.DialAborted(w.shard.Index)
			return
		}
		wasHealthy := b.Healthy()
		b.DialFailed(w.shard.Index, err, started, time.Now())
		if !failed.Swap(true) && wasHealthy {
			log.Warn("backend dial failed; backing off", zap.String("backend", b.Settings().URL), zap.Error(err))
		}
		return
	}
	if err := w.shard.Enroll(ctx, b, nc); err != nil {
		log.Debug("enroll failed", zap.Error(err))
	}
}

// sweep runs the loop-side step and waits for its result.
func (w *worker) sweep(ctx context.Context) ([]pool.SweepResult, bool) {
	done := make(chan []pool.SweepResult, 1)
	err := w.shard.Loop().Execute(ctx, gnet.RunnableFunc(func(context.Context) error {
		done <- w.shard.Sweep()
		return nil
	}))
	if err != nil {
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

func share(n, shards, i int) int {
	q, r := n/shards, n%shards
	if i < r {
		return q + 1
	}
	return q
}

func jitter(d time.Duration, f float64) time.Duration {
	return time.Duration(float64(d) * (1 - f + 2*f*rand.Float64()))
}
