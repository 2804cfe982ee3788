package goroutineproxy

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/zap"

	"github.com/wsgate/wsgate/internal/backoff"
	"github.com/wsgate/wsgate/internal/jitter"
)

// Pool holds the connections to one backend. Its counters are the truth
// the reconcile worker acts on, so every transition updates them in an
// order that can only over-count for an instant, never under-count: a
// reconcile run reading them mid-transition then dials too few (fixed by
// the next run) rather than too many (which would break the size limit).
//
// Safe for concurrent use.
type Pool struct {
	url    string
	cfg    *Config
	log    *zap.Logger
	dialer *websocket.Dialer
	nextID *atomic.Uint64 // shared by every pool of the proxy

	idle  chan *backendConn // idle connections, some possibly broken since; capacity PoolSize
	inUse sync.Map          // id -> *backendConn, leased

	nIdle     atomic.Int64 // connections in idle, broken or not
	nDeadIdle atomic.Int64 // of those, found broken while idle
	nLeased   atomic.Int64
	nDialing  atomic.Int64

	dials, dialErrors, leases, broken atomic.Int64    // totals since start
	retry                             backoff.Backoff // after a run with failed dials; reset by one without

	signal chan struct{} // size 1: reconcile requests coalesce
	conns  sync.WaitGroup
}

func newPool(url string, cfg *Config, dialer *websocket.Dialer, nextID *atomic.Uint64) *Pool {
	return &Pool{
		url:    url,
		cfg:    cfg,
		log:    cfg.Logger.With(zap.String("backend", url)),
		dialer: dialer,
		nextID: nextID,
		idle:   make(chan *backendConn, cfg.PoolSize),
		signal: make(chan struct{}, 1),
		retry:  backoff.Backoff{Base: 200 * time.Millisecond, Cap: 25600 * time.Millisecond, Jitter: 0.1},
	}
}

// Signal asks the reconcile worker for a run; it never blocks, and any
// number of signals before the run starts make one run.
func (p *Pool) Signal() {
	select {
	case p.signal <- struct{}{}:
	default:
	}
}

// live is the connections that count against the pool size.
func (p *Pool) live() int64 {
	return p.nIdle.Load() - p.nDeadIdle.Load() + p.nLeased.Load() + p.nDialing.Load()
}

// tryAcquire leases an idle connection without waiting; nil if none.
func (p *Pool) tryAcquire() *backendConn {
	for {
		select {
		case bc := <-p.idle:
			if bc = p.lease(bc); bc != nil {
				return bc
			}
		default:
			return nil
		}
	}
}

// acquireWait waits up to timeout for an idle connection.
func (p *Pool) acquireWait(ctx context.Context, timeout time.Duration) *backendConn {
	t := time.NewTimer(timeout)
	defer t.Stop()
	for {
		select {
		case bc := <-p.idle:
			if bc = p.lease(bc); bc != nil {
				return bc
			}
		case <-t.C:
			return nil
		case <-ctx.Done():
			return nil
		}
	}
}

// lease turns a connection taken off the idle channel into a leased one,
// or drops it (nil) if it broke while idle.
func (p *Pool) lease(bc *backendConn) *backendConn {
	if bc.state.CompareAndSwap(connIdle, connLeased) {
		p.nLeased.Add(1)
		p.nIdle.Add(-1)
		p.inUse.Store(bc.id, bc)
		p.leases.Add(1)
		return bc
	}
	// Broken while idle: markBroken counted it dead; it leaves the pool now.
	p.nDeadIdle.Add(-1)
	p.nIdle.Add(-1)
	p.Signal()
	return nil
}

// release returns a leased connection: to the idle channel if healthy,
// out of the pool if it broke during the session.
func (p *Pool) release(bc *backendConn) {
	p.inUse.Delete(bc.id)
	bc.session.Store(nil)
	if bc.state.CompareAndSwap(connLeased, connIdle) {
		p.nIdle.Add(1)
		p.nLeased.Add(-1)
		select {
		case p.idle <- bc:
		default:
			// Cannot happen while the counters hold: the channel has room for
			// the whole pool. Drop the connection rather than block.
			p.log.Error("idle channel full on release; closing the connection")
			bc.markBroken("idle channel full")
			p.nDeadIdle.Add(-1)
			p.nIdle.Add(-1)
		}
		return
	}
	p.nLeased.Add(-1)
	p.Signal()
}

// reconcileLoop is the pool's one reconcile worker: it runs ensureCapacity
// on every signal and on a jittered tick, one run at a time, and waits out
// a backoff after failed dials.
func (p *Pool) reconcileLoop(ctx context.Context) {
	defer func() {
		if r := recover(); r != nil {
			p.log.Error("reconcile worker panicked", zap.Any("panic", r), zap.Stack("stack"))
		}
	}()
	tick := time.NewTimer(jitter.Scale(p.cfg.ReconcileInterval, 0.1))
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-p.signal:
		case <-tick.C:
			tick.Reset(jitter.Scale(p.cfg.ReconcileInterval, 0.1))
		}
		if backoff := p.ensureCapacity(ctx); backoff > 0 {
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
		}
	}
}

// ensureCapacity is the one authoritative step: purge broken idle
// connections, compare live with target, grow or shrink, report. It
// returns how long to back off if dials failed.
func (p *Pool) ensureCapacity(ctx context.Context) (backoff time.Duration) {
	purged := p.purgeDead()
	target := int64(p.cfg.PoolSize)
	live := p.live()
	var grown, shrunk, failed int
	switch {
	case live < target:
		grown, failed = p.grow(ctx, int(target-live))
	case live > target:
		shrunk = p.shrink(int(live - target))
	}
	if ce := p.log.Check(zap.DebugLevel, "reconciled"); ce != nil || failed > 0 || purged > 0 {
		fields := []zap.Field{zap.Int64("target", target), zap.Int64("live_before", live),
			zap.Int("grown", grown), zap.Int("shrunk", shrunk), zap.Int("failed", failed), zap.Int("purged", purged),
			zap.Int64("idle", p.nIdle.Load()), zap.Int64("leased", p.nLeased.Load())}
		if ce != nil {
			ce.Write(fields...)
		} else {
			p.log.Warn("reconciled with failures", fields...)
		}
	}
	if failed == 0 {
		p.retry.Reset()
		return 0
	}
	return p.retry.Next()
}

// purgeDead takes every connection off the idle channel once and puts the
// healthy ones back. Acquirers may find the channel short meanwhile; the
// counters do not change for the healthy ones, so reconcile is not fooled.
func (p *Pool) purgeDead() int {
	if p.nDeadIdle.Load() == 0 {
		return 0
	}
	purged := 0
	for n := len(p.idle); n > 0; n-- {
		var bc *backendConn
		select {
		case bc = <-p.idle:
		default:
			return purged
		}
		if bc.state.Load() == connIdle {
			select {
			case p.idle <- bc: // back where it was
			default:
				// A release filled the slot meanwhile: the channel holds
				// broken ones beyond the pool size. Retire this one.
				p.retireIdle(bc)
			}
			continue
		}
		p.nDeadIdle.Add(-1)
		p.nIdle.Add(-1)
		purged++
	}
	return purged
}

// grow dials n connections, DialParallelism at a time, and adds the ones
// that connect to the idle channel.
func (p *Pool) grow(ctx context.Context, n int) (grown, failed int) {
	var wg sync.WaitGroup
	var ok, bad atomic.Int64
	sem := make(chan struct{}, p.cfg.DialParallelism)
	for i := 0; i < n; i++ {
		p.nDialing.Add(1)
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			if p.dialOne(ctx) {
				ok.Add(1)
			} else {
				bad.Add(1)
			}
		}()
	}
	wg.Wait()
	return int(ok.Load()), int(bad.Load())
}

// dialOne dials one backend connection; the caller counted it dialing.
func (p *Pool) dialOne(ctx context.Context) bool {
	p.dials.Add(1)
	dctx, cancel := context.WithTimeout(ctx, p.cfg.DialTimeout)
	ws, resp, err := p.dialer.DialContext(dctx, p.url, nil)
	cancel()
	if resp != nil && resp.Body != nil {
		_ = resp.Body.Close()
	}
	if err != nil {
		p.dialErrors.Add(1)
		p.nDialing.Add(-1)
		if ce := p.log.Check(zap.DebugLevel, "dial failed"); ce != nil {
			ce.Write(zap.Error(err))
		}
		return false
	}
	bc := newBackendConn(p, p.nextID.Add(1), ws)
	p.nIdle.Add(1)
	p.nDialing.Add(-1)
	select {
	case p.idle <- bc:
	default:
		// Broken connections still queued fill the channel: drop this one,
		// the next run purges them and dials again.
		bc.markBroken("idle channel full")
		p.nDeadIdle.Add(-1)
		p.nIdle.Add(-1)
		p.Signal()
		return false
	}
	p.conns.Add(2)
	go bc.readLoop()
	go bc.healthLoop()
	return true
}

// shrink closes up to n idle connections.
func (p *Pool) shrink(n int) int {
	closed := 0
	for ; closed < n; closed++ {
		select {
		case bc := <-p.idle:
			p.retireIdle(bc)
		default:
			return closed
		}
	}
	return closed
}

// retireIdle takes bc, just taken off the idle channel, out of the pool.
func (p *Pool) retireIdle(bc *backendConn) {
	if bc.state.CompareAndSwap(connIdle, connBroken) {
		p.nIdle.Add(-1)
		bc.closeConn()
		return
	}
	// It broke while idle: markBroken counted it dead already.
	p.nDeadIdle.Add(-1)
	p.nIdle.Add(-1)
}

// closeAll closes every connection of the pool; used at shutdown after the
// reconcile worker stopped.
func (p *Pool) closeAll() {
	for {
		select {
		case bc := <-p.idle:
			bc.markBroken("shutdown")
		default:
			p.inUse.Range(func(_, v any) bool {
				v.(*backendConn).markBroken("shutdown")
				return true
			})
			p.conns.Wait()
			return
		}
	}
}

// PoolStats is a snapshot of one pool's counters.
type PoolStats struct {
	Backend    string `json:"backend"`
	Target     int    `json:"target"`
	Idle       int64  `json:"idle"`
	DeadIdle   int64  `json:"dead_idle"`
	Leased     int64  `json:"leased"`
	Dialing    int64  `json:"dialing"`
	Dials      int64  `json:"dials"`
	DialErrors int64  `json:"dial_errors"`
	Leases     int64  `json:"leases"`
	Broken     int64  `json:"broken"`
}

// Stats returns the pool's counters. Safe for concurrent use.
func (p *Pool) Stats() PoolStats {
	return PoolStats{
		Backend: p.url, Target: p.cfg.PoolSize,
		Idle: p.nIdle.Load(), DeadIdle: p.nDeadIdle.Load(), Leased: p.nLeased.Load(), Dialing: p.nDialing.Load(),
		Dials: p.dials.Load(), DialErrors: p.dialErrors.Load(), Leases: p.leases.Load(), Broken: p.broken.Load(),
	}
}
