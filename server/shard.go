package server

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/panjf2000/gnet/v2"
	"go.uber.org/zap"

	"github.com/wsgate/wsgate/internal/framewrite"
	"github.com/wsgate/wsgate/internal/loopq"
	"github.com/wsgate/wsgate/internal/readpause"
	"github.com/wsgate/wsgate/internal/wheel"
)

// wheelSlots is the timer wheel size: with the default 100 ms tick one
// revolution is 51.2 s, longer than the default ping interval.
const wheelSlots = 512

// Shard is everything one event loop owns: its client sessions, its timer
// wheel, the work deferred to the end of its callbacks, its frame writer,
// and the connections whose reading it paused. Every method is Loop-only
// unless it says otherwise; the fields set at creation (srv, loop, index)
// are read-only afterwards.
type Shard struct {
	srv   *Server
	loop  gnet.EventLoop // Execute is the only way in from other goroutines
	index int            // creation order: the pool's shard of the same index lives on this loop

	anchor   gnet.Conn             // this loop's anchor connection (see Server.anchorLoops)
	wheel    *wheel.Wheel          // every deadline of this loop's connections
	queue    loopq.Queue           // work deferred to the end of the current callback
	writer   *framewrite.Writer    // every frame written on this loop
	sessions map[*Session]struct{} // open client connections, for shutdown
	tickFn   gnet.RunnableFunc     // advances the wheel; allocated once
	poller   *readpause.Loop       // this loop's epoll instance, for pausing reads
	flow     flowState             // connections paused for backpressure (flow.go)

	// Sessions is the number of upgraded sessions open on this shard
	// (written on the loop, read by anyone).
	Sessions atomic.Int64
	// clients is the number of client connections handed to this loop
	// and not yet closed (the acceptor adds, the loop subtracts); the
	// acceptor gives new connections to the loop with the fewest.
	clients atomic.Int64
	traffic traffic // frames and bytes of this loop's clients (Stats sums them)
}

func newShard(srv *Server, loop gnet.EventLoop, index int) *Shard {
	sh := &Shard{
		srv:      srv,
		loop:     loop,
		index:    index,
		wheel:    wheel.New(wheelSlots, int64(srv.cfg.TickInterval), srv.now()),
		writer:   framewrite.New(),
		sessions: make(map[*Session]struct{}),
	}
	sh.writer.Queued = sh.requeued
	sh.flow.init()
	sh.queue.OnPanic = func(r any) { sh.panicked("deferred work", r) }
	sh.tickFn = func(context.Context) error {
		sh.queue.Enter()
		defer sh.queue.Leave()
		defer sh.recoverWork("timers")
		sh.wheel.Advance(srv.now())
		sh.checkPaused()
		return nil
	}
	return sh
}

// recoverWork, deferred by work the loop runs outside a connection's
// callback (timers, tasks through Run), keeps a panic from ending the
// process: gnet does not recover.
func (sh *Shard) recoverWork(what string) {
	if r := recover(); r != nil {
		sh.panicked(what, r)
	}
}

// panicked counts and logs a panic of loop work that no connection's
// callback owns.
func (sh *Shard) panicked(what string, r any) {
	sh.srv.stats.Panics.Add(1)
	sh.srv.limitedLog(zap.ErrorLevel, &sh.srv.panicLog, "event loop work panicked",
		zap.String("work", what), zap.Int("shard", sh.index), zap.Any("panic", r), zap.StackSkip("stack", 2))
}

// Index is the shard's index, the same as its event loop's in the pool.
// Safe for concurrent use.
func (sh *Shard) Index() int { return sh.index }

// Loop is the shard's event loop. Safe for concurrent use.
func (sh *Shard) Loop() gnet.EventLoop { return sh.loop }

// Wheel is the shard's timer wheel.
func (sh *Shard) Wheel() *wheel.Wheel { return sh.wheel }

// Writer is the shard's frame writer.
func (sh *Shard) Writer() *framewrite.Writer { return sh.writer }

// Defer runs fn after the current callback returns (see package loopq):
// work one connection's callback triggers on another.
func (sh *Shard) Defer(fn func()) { sh.queue.Defer(fn) }

// Run runs fn on the shard's loop as one of its callbacks (its deferred
// work runs after it). Safe for concurrent use; it does not wait.
func (sh *Shard) Run(fn func()) error {
	return sh.loop.Execute(context.Background(), gnet.RunnableFunc(func(context.Context) error {
		sh.queue.Enter()
		defer sh.queue.Leave()
		defer sh.recoverWork("task")
		fn()
		return nil
	}))
}

// runTicker asks the loop to advance the shard's timer wheel every tick,
// so no connection needs a goroutine or a runtime timer of its own; while
// connections are paused it ticks faster, so they resume soon after their
// peer drained (a first pause wakes it, so that holds from the first).
func (sh *Shard) runTicker(ctx context.Context) {
	defer sh.srv.tickers.Done()
	defer func() {
		if r := recover(); r != nil {
			sh.srv.log.Error("shard ticker panicked", zap.Int("shard", sh.index), zap.Any("panic", r))
		}
	}()
	t := time.NewTimer(sh.srv.cfg.TickInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-sh.flow.wake: // a first pause: check it soon, not at the next slow tick
			t.Reset(flowCheckInterval)
		case <-t.C:
			if err := sh.loop.Execute(ctx, sh.tickFn); err != nil {
				return // the engine is shutting down
			}
			next := sh.srv.cfg.TickInterval
			if sh.flow.count.Load() > 0 {
				next = min(next, flowCheckInterval)
			}
			t.Reset(next)
		}
	}
}

// now is the shard's coarse clock: the time of the last tick. Loop-only.
func (sh *Shard) now() int64 { return sh.wheel.Now() }

// openSession starts a session for a new client connection. Loop-only.
func (sh *Shard) openSession(c gnet.Conn, ac *acceptedConn) {
	srv := sh.srv
	s := &Session{conn: c, shard: sh, id: srv.nextID.Add(1), started: srv.now()}
	s.timer.Owner = s
	s.reader = srv.newFrameReader()
	c.SetContext(s)
	sh.sessions[s] = struct{}{}
	s.lastRead = sh.now()
	sh.wheel.Schedule(&s.timer, sh.now()+int64(srv.cfg.HandshakeTimeout))
	if srv.shuttingDown.Load() { // accepted just before Shutdown began
		s.flags |= flagRefuseBusy
	}
	if ac.tls != nil {
		// The session reads and writes plaintext; what the handshake read
		// past its end (the request, often) is read at once, after this
		// callback: the socket may have nothing more to say. Its client
		// and per-IP check were settled before the handshake.
		s.conn = ac.tls.Attach(c, srv.tlsReadEnded)
		s.client = ac.client
		if ac.admitted {
			s.flags |= flagAdmitted
		}
		sh.Defer(s.readEarly)
		return
	}
	s.client, _ = addrPort(c.RemoteAddr())
	if !srv.cfg.ProxyProtocol {
		s.checkLimits()
		return
	}
	if !srv.trustedPeer(c.RemoteAddr()) {
		srv.proxyFailed(ProxyUntrusted, c.RemoteAddr(), nil)
		s.flags |= flagRefuseProxy // whatever it sends, answered 400 once the request is whole
		s.lingerRefused()
		return
	}
	s.flags |= flagAwaitProxy
}

// closeAll starts the close handshake (1001) with every session and cuts
// connections still handshaking. Loop-only.
func (sh *Shard) closeAll() {
	for s := range sh.sessions {
		s.shutdown()
	}
}
