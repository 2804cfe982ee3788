package relay

import (
	"github.com/gobwas/ws"

	"github.com/wsgate/wsgate/codec"
	"github.com/wsgate/wsgate/pool"
	"github.com/wsgate/wsgate/server"
)

// binding is one session's relay: the client session, the backend
// connection it leased, and the state of both directions. It is the
// session's server.SessionHandler (client events) and pool.Waiter; its
// backend side (backendSide) is the leased connection's gnet handler.
// Loop-only.
type binding struct {
	proxy *Proxy
	s     *server.Session
	sp    *pool.ShardPool
	group string     // the backend group its route chose
	lane  string     // the group's connections of the session's subprotocol (pool.Lane)
	start *startInfo // kept until the session-start message went out; nil if none is wanted

	conn    *pool.Conn   // the leased backend connection; nil before and after
	side    *backendSide // conn's gnet handler while leased
	waiting bool         // queued in the shard pool for a connection

	// midMessage: a message from the client to the backend has started
	// and not ended (the backend connection is not clean until it ends).
	midMessage bool

	backendURL  string        // the backend of the leased connection, for the access log
	backendGone ws.StatusCode // code the backend side failed with, 0 if it did not
}

// Opened leases a connection, or queues the session and holds its frames.
func (b *binding) Opened() {
	if c := b.sp.Acquire(b, b.lane); c != nil {
		b.bind(c)
		return
	}
	b.waiting = true
	b.s.Hold(b.proxy.acquireTimeout)
}

// StillWaiting tells the pool whether this session still wants a connection.
func (b *binding) StillWaiting() bool { return b.waiting }

// Granted is the pool handing a waiting session its connection (deferred
// work of the shard: the session's held frames are read after it).
func (b *binding) Granted(c *pool.Conn) bool {
	if !b.waiting || !b.s.Open() {
		return false
	}
	b.stopWaiting()
	b.bind(c)
	b.s.Release()
	return true
}

// HoldExpired stops waiting as soon as the acquire timeout fires, so
// reconcile no longer dials for a session that is closing.
func (b *binding) HoldExpired() { b.stopWaiting() }

func (b *binding) stopWaiting() {
	if b.waiting {
		b.waiting = false
		b.sp.StopWaiting(b.lane)
	}
}

// bind makes c the session's backend connection: its traffic comes to the
// backend side, and it gets the session-start message first.
func (b *binding) bind(c *pool.Conn) {
	b.conn = c
	b.side = &backendSide{b: b, c: c}
	b.backendURL = c.Backend().Settings().URL
	c.Bind(b.side)
	if start := b.start; start != nil {
		b.start = nil
		if st := c.Backend().Settings(); st.SessionStart {
			if err := c.SendText(sessionStartMessage(b.s, start, st.SessionHeaders)); err != nil {
				return // the write failed and closed it: the backend side's OnClose ran
			}
		}
	}
	if c.Gnet().InboundBuffered() > 0 {
		b.s.Shard().Defer(b.side.readBuffered) // replies that arrived before the bind
	}
}

// Data relays a piece of a client frame to the backend as it arrived. Past
// the high watermark of the backend connection's queue the client is not
// read until it drains.
func (b *binding) Data(pc codec.Piece) bool {
	c := b.conn
	if c == nil {
		return false // no backend (it went away): the session is closing
	}
	w := b.s.Shard().Writer()
	w.Batch(c.Gnet()) // the session flushes once its read is done
	if err := c.WritePiece(pc); err != nil {
		return false // gnet closed it; the backend side's OnClose ran
	}
	b.midMessage = !(pc.Last && pc.Header.Fin)
	if c.Gnet().OutboundBuffered()+w.Pending(c.Gnet()) > b.s.Shard().High() {
		b.s.Pause()
		return false
	}
	return true
}

// MayRead is the client's flow gate: its backend connection's queue is
// below the low watermark.
func (b *binding) MayRead() bool {
	return b.conn == nil || b.conn.Gnet().OutboundBuffered() < b.s.Shard().Low()
}

// Stalled: the backend did not read what the client sent for the stall
// timeout. The session ends 1013; the connection, its queue full and
// maybe mid-frame, is not reused.
func (b *binding) Stalled() {
	b.dropBackend(0)
	b.s.CloseFor(codec.CloseTryAgainLater, "backend is not keeping up", server.ReasonSlowBackend)
}

// Failing lets the backend's replies to the client's earlier messages
// through before the close (a bounded drain), when there is a backend.
func (b *binding) Failing(*codec.ProtocolError) bool { return b.conn != nil }

// Closed ends the lease: the connection goes back to the pool, clean only
// if no message was left half-relayed toward the backend (the pool checks
// the other direction).
func (b *binding) Closed(server.CloseReason) {
	b.stopWaiting()
	if b.conn != nil {
		clean := !b.midMessage && !b.conn.OutMidFrame()
		b.release(clean)
	}
	b.start = nil
}

// Backend names the backend for the access record.
func (b *binding) Backend() (string, ws.StatusCode) { return b.backendURL, b.backendGone }

// release gives the connection back to the pool, reading it again first
// if the relay had paused it.
func (b *binding) release(clean bool) {
	c := b.conn
	b.conn = nil
	b.s.Shard().Unpause(c.Gnet())
	b.sp.Release(c, clean)
}

// dropBackend gives the connection back as unclean; with a code, it is
// also failed (closed with that code, counted as a failure).
func (b *binding) dropBackend(failCode ws.StatusCode) {
	c := b.conn
	if c == nil {
		return
	}
	b.release(false)
	if failCode != 0 {
		c.Fail(failCode)
	}
}

// backendEnded tells the client its backend went away: a close with code,
// or, if a frame toward the client is half written (it can never be
// finished), the end of TCP.
func (b *binding) backendEnded(code ws.StatusCode, reason string) {
	b.endWith(code, reason, server.ReasonBackendLost)
}

// backendClosed tells the client its backend closed the session: its code
// and reason, as they came.
func (b *binding) backendClosed(code ws.StatusCode, reason string) {
	b.endWith(code, reason, server.ReasonBackendClose)
}

func (b *binding) endWith(code ws.StatusCode, reason string, why server.CloseReason) {
	b.backendGone = code
	if b.s.OutMidFrame() {
		b.s.Abort(why)
		return
	}
	if b.s.Failing() {
		return // the drain ends by itself; the client gets its own close
	}
	b.s.CloseFor(code, reason, why)
}

// pieceMax bounds what one piece toward a peer takes of the inbound
// buffer (see server.Session's readFrames).
const pieceMax = 64 << 10
