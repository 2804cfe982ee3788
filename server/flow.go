package server

import (
	"sync/atomic"
	"time"

	"github.com/panjf2000/gnet/v2"
	"go.uber.org/zap"

	"github.com/wsgate/wsgate/internal/readpause"
)

// Flow control: backpressure instead of closing.
//
// When the bytes queued toward a peer pass the high watermark, whoever
// produces them stops being read: its socket buffer fills and TCP slows
// its sender, as nginx does. It is read again once the queue is below the
// low watermark. A client that pings and never reads pauses itself; in
// the gateway the relay pauses the client while its backend connection's
// queue is full, and the backend connection while the client's is. Healthy
// sessions are never closed for being fast: a peer is closed only when the
// queue it should drain has not gone down for the stall timeout.
//
// Reading is paused in the loop's epoll set (package readpause). gnet
// changes a connection's interest itself when a write queues bytes and
// when its queue empties; after either, a paused connection is paused
// again: requeued (a write that queued bytes) and the reader's check of its
// own paused state (the one read gnet does after its queue emptied; those
// bytes stay in the inbound buffer, at most one read).
//
// Paused connections are checked after every callback of the loop (at
// most once per flowCheckInterval) and by the shard's ticker, which ticks
// every flowCheckInterval while any connection is paused, so a paused
// connection resumes within about that time after its peer drained.

// flowCheckInterval is how often paused connections are looked at.
const flowCheckInterval = 2 * time.Millisecond

// Resumer says when a paused connection may be read again, and what to do
// then. Loop-only.
type Resumer interface {
	// MayResume reports whether the queue the connection waits for is
	// below the low watermark.
	MayResume() bool
	// Resumed runs once reading resumed (as deferred work): read what
	// was left buffered.
	Resumed()
	// Stalled runs when the connection has waited the stall timeout: the
	// peer that should drain does not. It should end the session; the
	// connection stays paused until it closes.
	Stalled()
}

// flowState is one shard's paused connections. Loop-only, except count.
type flowState struct {
	paused    map[int]*pausedConn // by descriptor
	lastCheck int64               // precise clock of the last check
	count     atomic.Int64        // len(paused), read by the ticker
	// wake tells the ticker that a first connection was paused: it ticks
	// at flowCheckInterval from now, not after the rest of a slow tick.
	wake chan struct{}
}

type pausedConn struct {
	c       gnet.Conn
	r       Resumer
	since   int64 // shard clock
	stalled bool  // Stalled was called
}

func (f *flowState) init() {
	f.paused = make(map[int]*pausedConn)
	f.wake = make(chan struct{}, 1)
}

// High is the high watermark: bytes queued toward a peer past which its
// source is paused. Safe for concurrent use.
func (sh *Shard) High() int { return sh.srv.cfg.FlowWindow / 2 }

// Low is the low watermark: a paused source resumes once the queue is
// below it. Safe for concurrent use.
func (sh *Shard) Low() int { return sh.srv.cfg.FlowWindow / 8 }

// Pause stops reading c until r.MayResume, or until c closes. Pausing a
// paused connection only puts r in charge of it. Loop-only.
func (sh *Shard) Pause(c gnet.Conn, r Resumer) {
	fd := c.Fd()
	if p, ok := sh.flow.paused[fd]; ok {
		p.r = r
		return
	}
	if err := sh.poller.Pause(fd, c.OutboundBuffered() > 0); err != nil {
		sh.srv.limitedWarn(&sh.srv.flowLog, "could not pause a connection", zap.Error(err))
		return
	}
	sh.flow.paused[fd] = &pausedConn{c: c, r: r, since: sh.now()}
	sh.flow.count.Store(int64(len(sh.flow.paused)))
	sh.srv.stats.Pauses.Add(1)
	if len(sh.flow.paused) == 1 {
		select { // never blocks: one wake-up pending is enough
		case sh.flow.wake <- struct{}{}:
		default:
		}
	}
}

// Paused reports whether c is paused. Loop-only.
func (sh *Shard) Paused(c gnet.Conn) bool {
	_, ok := sh.flow.paused[c.Fd()]
	return ok
}

// Repause is for a paused connection that was read anyway (gnet reads
// once after its queue empties): stop reading it again. Loop-only.
func (sh *Shard) Repause(c gnet.Conn) {
	if _, ok := sh.flow.paused[c.Fd()]; ok {
		_ = sh.poller.Pause(c.Fd(), c.OutboundBuffered() > 0)
	}
}

// requeued is the writer's hook: a write queued bytes on c, and gnet asked
// for its reads again; a paused c stops being read.
func (sh *Shard) requeued(c gnet.Conn) { sh.Repause(c) }

// Unpause reads c again at once if it was paused (its session is closing
// and must read the close reply, or it got what it waited for). Loop-only.
func (sh *Shard) Unpause(c gnet.Conn) {
	fd := c.Fd()
	if p, ok := sh.flow.paused[fd]; ok {
		_ = sh.poller.Resume(fd, c.OutboundBuffered() > 0)
		sh.unpause(fd, p)
	}
}

// Forget drops c from the paused connections (it is closing). Loop-only.
func (sh *Shard) Forget(c gnet.Conn) {
	if p, ok := sh.flow.paused[c.Fd()]; ok { // c may be the raw connection under a TLS one
		sh.unpause(c.Fd(), p)
	}
}

func (sh *Shard) unpause(fd int, p *pausedConn) {
	delete(sh.flow.paused, fd)
	sh.flow.count.Store(int64(len(sh.flow.paused)))
	sh.srv.stats.PausedNanos.Add(max(0, sh.now()-p.since))
}

// checkPaused resumes the paused connections whose peer drained, and
// tells those that waited past the stall timeout. Loop-only.
func (sh *Shard) checkPaused() {
	if len(sh.flow.paused) == 0 {
		return
	}
	precise := int64(time.Since(sh.srv.epoch))
	if precise-sh.flow.lastCheck < int64(flowCheckInterval) {
		return
	}
	sh.flow.lastCheck = precise
	now := sh.now()
	stall := int64(sh.srv.cfg.StallTimeout)
	for fd, p := range sh.flow.paused {
		switch {
		case p.r.MayResume():
			if err := sh.poller.Resume(fd, p.c.OutboundBuffered() > 0); err != nil {
				sh.srv.limitedWarn(&sh.srv.flowLog, "could not resume a connection", zap.Error(err))
			}
			sh.unpause(fd, p)
			sh.Defer(p.r.Resumed)
		case !p.stalled && now-p.since >= stall:
			p.stalled = true
			sh.srv.stats.Stalls.Add(1)
			sh.Defer(p.r.Stalled)
		}
	}
}

// findPoller locates this loop's epoll instance from its anchor
// connection, once. Without it reads cannot be paused: the server refuses
// to start rather than run without flow control.
func (sh *Shard) findPoller(anchor gnet.Conn) error {
	p, err := readpause.Find(anchor.Fd())
	if err != nil {
		return err
	}
	sh.poller = p
	return nil
}
