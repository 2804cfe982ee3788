package pool

import (
	"sync/atomic"
	"time"

	"github.com/gobwas/ws"
	"github.com/panjf2000/gnet/v2"

	"github.com/wsgate/wsgate/codec"
	"github.com/wsgate/wsgate/internal/jitter"
	"github.com/wsgate/wsgate/internal/looptls"
	"github.com/wsgate/wsgate/internal/wheel"
)

// State is where a backend connection is in its life.
type State uint8

const (
	StateDialing   State = iota // reserved, being dialed off-loop (or moving in from another shard)
	StateIdle                   // in its shard's ring
	StateLeased                 // bound to one session
	StateReleasing              // resetting after a session (PolicyReset)
	StateClosing                // close requested; gnet's OnClose pending
	StateClosed                 // gone, or moved to another shard (a new Conn there)
)

var stateNames = [...]string{"dialing", "idle", "leased", "releasing", "closing", "closed"}

func (s State) String() string { return stateNames[s] }

type connFlags uint8

const (
	flagPingOutstanding connFlags = 1 << iota // pinged; nothing arrived since
	flagClosing                               // close requested; OnClose pending
	flagBroken                                // must not be reused (protocol error, a frame half written)
	flagMoving                                // handed to another shard: this loop's copy is closing quietly
	flagOutMidFrame                           // a frame toward the backend is partly written: no control frame may go out
	flagPongOwed                              // a pong waits for that frame to end
	flagAcked                                 // releasing: the reset ack arrived; finishReset decides (deferred)
)

// Conn is one WebSocket connection to a backend, enrolled on its shard's
// loop. Loop-only, except enrolled (set on the loop, read by Enroll).
//
// While idle or releasing the connection is the pool's: its traffic comes
// here (OnTraffic: health, the reset). While leased the session's relay
// binds it (Bind): gnet delivers its traffic to the relay, which reads its
// frames with Reader and writes to it with WritePiece, Pong and SendText.
type Conn struct {
	gc      gnet.Conn // nil until enrolled
	shard   *ShardPool
	local   *shardBackend
	backend *Backend
	state   State
	flags   connFlags

	prev, next *Conn       // ring links while idle
	timer      wheel.Timer // ping, pong, reset deadlines

	expires      int64 // shard clock: retire after this (lifetime with jitter)
	idleSince    int64 // shard clock: when it last became idle
	lastRead     int64 // shard clock: last inbound bytes
	pingAt       int64 // shard clock: outstanding ping sent
	releaseStart int64 // shard clock: reset began
	lastFrameAt  int64 // precise clock (ShardPool.preciseNow): last inbound bytes, for the reset's quiet period
	need         int   // inbound bytes needed before reading is worth trying

	reader  codec.FrameReader // every frame the backend sends, whoever reads it
	outKey  [4]byte           // mask of the frame toward the backend being written in pieces
	pong    [125]byte         // flagPongOwed: the latest ping's payload
	pongLen uint8
	ack     []byte // releasing: what arrived so far of a text frame that may be the reset ack

	transferLane string // set on a connection moved from another shard, for the lane that asked for it
	protocol     string // the subprotocol the backend agreed to at the upgrade ("" for none)

	secured *looptls.Handshaken // wss://: its TLS state until OnOpen puts it on the loop

	enrolled atomic.Bool // OnOpen ran (read by Enroll off-loop)
}

// Backend is the backend this connection goes to.
func (c *Conn) Backend() *Backend { return c.backend }

func (c *Conn) settings() *Settings { return c.backend.Settings() }

// Gnet is the connection's gnet connection (the relay's flow control
// reads its queue and pauses it). Loop-only.
func (c *Conn) Gnet() gnet.Conn { return c.gc }

// Reader reads the backend's frames: the relay reads with it while it
// holds the connection, the pool otherwise, so a frame is never parsed
// from its middle.
func (c *Conn) Reader() *codec.FrameReader { return &c.reader }

// Bind hands the connection's traffic to h while it is leased: gnet
// delivers its events to h (server.ConnHandler) until the lease ends.
func (c *Conn) Bind(h any) { c.gc.SetContext(h) }

// unbind takes the connection's traffic back.
func (c *Conn) unbind() {
	if c.gc != nil {
		c.gc.SetContext(c)
	}
}

// NoteRead is the relay saying backend bytes arrived: the backend is alive.
func (c *Conn) NoteRead() {
	c.lastRead = c.shard.now()
	c.flags &^= flagPingOutstanding
}

// WritePiece writes a piece of a client frame to the backend as it
// arrived (cut-through): the first piece with the frame's header, masked
// with a fresh key, later pieces masked at their offset with the same key.
// A pong owed while a frame is half written follows the frame's end.
func (c *Conn) WritePiece(pc codec.Piece) error {
	w := c.shard.loop.Writer()
	var err error
	if pc.First {
		c.outKey, err = w.Start(c.gc, pc.Header, pc.Payload, true)
	} else {
		err = w.Continue(c.gc, pc.Payload, c.outKey, pc.Offset, true)
	}
	if err != nil {
		return err // gnet closed the connection; OnClose has run
	}
	if !pc.Last {
		c.flags |= flagOutMidFrame
		return nil
	}
	c.flags &^= flagOutMidFrame
	if c.flags&flagPongOwed != 0 {
		c.flags &^= flagPongOwed
		return c.writeOwn(ws.OpPong, c.pong[:c.pongLen])
	}
	return nil
}

// OutMidFrame reports whether a frame toward the backend is partly written.
func (c *Conn) OutMidFrame() bool { return c.flags&flagOutMidFrame != 0 }

// SendText writes a text message of the gateway's own (the session start).
func (c *Conn) SendText(msg []byte) error { return c.writeOwn(ws.OpText, msg) }

// Pong answers a backend's ping: at once, or once the frame being
// written to it ends (only the latest ping's pong is owed, RFC 6455 5.5.3).
func (c *Conn) Pong(payload []byte) error {
	if c.flags&flagOutMidFrame != 0 {
		c.pongLen = uint8(copy(c.pong[:], payload))
		c.flags |= flagPongOwed
		return nil
	}
	return c.writeOwn(ws.OpPong, payload)
}

func (c *Conn) writeOwn(op ws.OpCode, payload []byte) error {
	return c.shard.loop.Writer().Own(c.gc, op, payload, true)
}

// setState moves c to st, keeping its shard's and backend's counters equal
// to the real state. The old state's counters go down before the new
// one's go up, so a concurrent reader summing them never sees more
// connections than exist (capacity decisions use Total, a single atomic).
func (c *Conn) setState(st State) {
	if c.state == st {
		return
	}
	if from := stateCounter(&c.local.Counters, c.state); from != nil {
		from.Add(-1)
		stateCounter(&c.backend.Counters, c.state).Add(-1)
	}
	if to := stateCounter(&c.local.Counters, st); to != nil {
		to.Add(1)
		stateCounter(&c.backend.Counters, st).Add(1)
	}
	if st == StateClosed {
		c.local.Total.Add(-1)
		c.backend.Total.Add(-1)
		c.local.Closed.Add(1)
		c.backend.Closed.Add(1)
	}
	c.state = st
}

func stateCounter(cs *Counters, st State) *atomic.Int64 {
	switch st {
	case StateDialing:
		return &cs.Dialing
	case StateIdle:
		return &cs.Idle
	case StateLeased:
		return &cs.Leased
	case StateReleasing:
		return &cs.Releasing
	case StateClosing:
		return &cs.Closing
	}
	return nil
}

// OnOpen is gnet's OnOpen for an enrolled connection: it becomes idle. A
// connection moved from another shard keeps its lifetime and is not a new
// enrollment. Loop-only (the server's event handler calls it).
func (c *Conn) OnOpen(gc gnet.Conn) {
	sh := c.shard
	c.gc = gc
	if c.secured != nil {
		// From now on every read and write of the connection is
		// plaintext through its TLS records.
		c.gc = c.secured.Attach(gc, c.tlsReadEnded)
		c.secured = nil
		sh.loop.Defer(c.readEarly)
	}
	now := sh.now()
	c.local.conns[c] = struct{}{}
	c.enrolled.Store(true)
	moved := c.transferLane
	c.transferLane = ""
	if moved == "" {
		c.backend.protocol.Store(&c.protocol) // what its newest connection agreed to (a moved one is not new)
		c.lastRead = now
		c.expires = now + int64(jitter.Scale(c.settings().MaxLifetime, 0.1))
		c.backend.Enrolled.Add(1)
		c.local.Enrolled.Add(1)
		c.backend.DialSucceeded()
	}
	sh.makeIdle(c, now) // grants it to a waiting session, if any (deferred)
	if moved != "" {
		sh.transferSettled(moved, true)
	}
	sh.Signal()
}

// CloseNotify sends a wss:// connection's close_notify before gnet closes
// it (a callback returning gnet.Close). Loop-only.
func (c *Conn) CloseNotify() {
	if t, ok := c.gc.(*looptls.Conn); ok {
		t.CloseNotify()
	}
}

// readEarly reads what arrived with a TLS connection's handshake (the
// backend's first frames behind its 101): it sits decrypted, or in
// crypto/tls's buffer, where no readable event announces it. Whoever
// holds the connection by now (the pool, or a session it was granted to)
// reads it. Deferred work.
func (c *Conn) readEarly() {
	if c.flags&flagClosing != 0 || c.state == StateClosed {
		return
	}
	if buf, _ := c.gc.Peek(-1); len(buf) == 0 {
		return
	}
	if h, ok := c.gc.Context().(interface{ OnTraffic() gnet.Action }); ok && h.OnTraffic() == gnet.Close {
		_ = c.gc.Close()
	}
}

// tlsReadEnded: the backend's TLS records failed, or it sent
// close_notify. Unless we were closing it, it is a failure: nothing more
// can be read from it.
func (c *Conn) tlsReadEnded(error) {
	if c.flags&flagClosing == 0 {
		c.Fail(codec.CloseGoingAway)
	}
}

// lane is the lane c serves: its backend's group and its subprotocol.
func (c *Conn) lane() string { return Lane(c.backend.Group(), c.protocol) }

// Protocol is the subprotocol the backend agreed to for c ("" for none).
func (c *Conn) Protocol() string { return c.protocol }

// reusable reports whether c may serve another session.
func (c *Conn) reusable(now int64) bool {
	return c.flags&(flagBroken|flagClosing) == 0 && !c.reader.InMessage() && c.flags&flagOutMidFrame == 0 && now < c.expires
}

// close sends close 1000 and asks gnet to close c; OnClose does the
// bookkeeping. Loop-only.
func (c *Conn) close() { c.closeWith(codec.CloseNormal) }

// closeWith sends close code (unless a frame toward the backend is half
// written: a close frame there would be read as its payload) and closes
// the connection.
func (c *Conn) closeWith(code ws.StatusCode) {
	if c.flags&flagClosing != 0 || c.gc == nil || c.state == StateClosed {
		return
	}
	c.flags |= flagClosing
	c.local.unlink(c)
	c.shard.loop.Wheel().Stop(&c.timer)
	c.setState(StateClosing)
	if c.flags&flagOutMidFrame == 0 {
		_ = c.shard.loop.Writer().Close(c.gc, code, "", true)
	}
	_ = c.gc.Close() // gnet flushes the close frame first
}

// Fail ends c because something went wrong with it (a protocol error of
// the backend, seen by the relay): it is counted, closed with code, never
// reused, and reconcile is signalled. Loop-only.
func (c *Conn) Fail(code ws.StatusCode) {
	c.countFailure()
	c.closeWith(code)
	c.shard.Signal()
}

func (c *Conn) countFailure() {
	c.backend.Failures.Add(1)
	c.local.Failures.Add(1)
	c.flags |= flagBroken
}

// OnClose is gnet's OnClose: the connection is gone. Loop-only. (While
// leased the relay gets gnet's OnClose and calls it.)
func (c *Conn) OnClose(error) {
	if t, ok := c.gc.(*looptls.Conn); ok {
		t.Gone()
	}
	if c.state == StateClosed {
		return
	}
	if c.flags&flagMoving != 0 {
		// Handed to another shard: the socket lives on there (a duplicate
		// descriptor); the counters moved with it (see ShardPool.giveAway).
		c.forget()
		c.state = StateClosed
		return
	}
	if c.flags&flagClosing == 0 {
		c.countFailure() // not our doing: the backend or the network ended it
	}
	c.flags |= flagClosing
	c.forget()
	c.setState(StateClosed)
	c.shard.Signal()
}

func (c *Conn) forget() {
	c.local.unlink(c)
	c.shard.loop.Wheel().Stop(&c.timer)
	delete(c.local.conns, c)
}

// OnTraffic reads the backend's frames while the pool holds the
// connection: control frames are answered, data frames close it while
// idle (a backend that sends unprompted cannot be trusted with the next
// session) and are dropped while releasing, until the reset ack. Between
// a release and its deferred end the connection is neither: its bytes
// wait. Loop-only.
func (c *Conn) OnTraffic() gnet.Action {
	c.lastRead = c.shard.now()
	c.lastFrameAt = c.shard.preciseNow()
	if c.flags&(flagClosing|flagMoving) != 0 {
		_, _ = c.gc.Discard(-1)
		return gnet.None
	}
	if (c.state != StateIdle && c.state != StateReleasing) || c.flags&flagAcked != 0 {
		return gnet.None // released or acked, the decision deferred: it looks at these bytes
	}
	return c.readFrames()
}

// readFrames reads what is buffered, piece by piece.
func (c *Conn) readFrames() gnet.Action {
	gc := c.gc
	if c.need > 0 && gc.InboundBuffered() < c.need {
		return gnet.None
	}
	buf, _ := gc.Peek(-1)
	off := 0
	c.need = 0
	for off < len(buf) {
		pc, n, err := c.reader.Next(buf[off:])
		if err != nil {
			return c.protocolFailure(err)
		}
		if n == 0 {
			c.need = c.reader.Need()
			break
		}
		off += n
		c.flags &^= flagPingOutstanding
		if act := c.onPiece(pc); act != gnet.None {
			return act
		}
		if c.state != StateIdle && c.state != StateReleasing || c.flags&(flagAcked|flagClosing) != 0 {
			break // closing, or the ack came: what follows decides (finishReset)
		}
	}
	if c.state == StateClosed {
		return gnet.None // gnet closed it under us (a write failed): its buffers are gone
	}
	if off > 0 { // Discard(0) would drop everything (gnet: n <= 0 means all)
		_, _ = gc.Discard(off)
	}
	return gnet.None
}

func (c *Conn) onPiece(pc codec.Piece) gnet.Action {
	switch pc.Header.OpCode {
	case ws.OpPing:
		// A backend that pings and never reads must not grow our queue
		// toward it without bound.
		if c.gc.OutboundBuffered() > c.shard.pool.cfg.QueueLimit {
			return c.failWith(codec.ClosePolicyViolation)
		}
		_ = c.Pong(pc.Payload)
		return gnet.None
	case ws.OpPong:
		return gnet.None
	case ws.OpClose:
		// The backend is going away: answer and close.
		if _, _, err := codec.ParseClosePayload(pc.Payload); err != nil {
			return c.protocolFailure(err)
		}
		return c.failWith(codec.CloseNormal)
	}
	if c.state == StateReleasing {
		c.checkResetAck(pc)
		return gnet.None
	}
	// Idle: the backend sends with no session to send for. Whatever it
	// sends next could reach the next session: the connection goes.
	c.backend.Stray.Add(1)
	c.local.Stray.Add(1)
	return c.failWith(codec.ClosePolicyViolation)
}

// protocolFailure closes a connection whose backend broke the protocol.
func (c *Conn) protocolFailure(err error) gnet.Action {
	code := codec.CloseProtocolError
	if pe, ok := err.(*codec.ProtocolError); ok {
		code = pe.Code
	}
	return c.failWith(code)
}

// failWith ends a connection from its own OnTraffic: the backend gets a
// close frame with code, reconcile a signal.
func (c *Conn) failWith(code ws.StatusCode) gnet.Action {
	c.Fail(code)
	return gnet.None // closeWith asked gnet to close it
}

// startReset begins PolicyReset: send the reset message and wait for the
// ack (or a quiet period) before going idle.
func (c *Conn) startReset(now int64) {
	st := c.settings()
	c.setState(StateReleasing)
	c.releaseStart = now
	c.lastRead = now
	c.lastFrameAt = c.shard.preciseNow()
	c.ack = c.ack[:0]
	if st.ResetMessage != "" {
		if err := c.SendText([]byte(st.ResetMessage)); err != nil || c.state != StateReleasing {
			return // closed by the write failure
		}
	}
	deadline := now + int64(st.ResetTimeout)
	if st.ResetAck == "" {
		deadline = min(deadline, now+int64(st.ResetQuiet))
	}
	c.shard.loop.Wheel().Schedule(&c.timer, deadline)
	if c.gc.InboundBuffered() > 0 { // bytes that waited for the release
		if c.readFrames() == gnet.Close {
			c.close()
		}
	}
}

// checkResetAck gathers a text frame that may be the ack; the ack ends the
// reset, and what follows it decides whether the connection is clean.
func (c *Conn) checkResetAck(pc codec.Piece) {
	ack := c.settings().ResetAck
	if ack == "" || pc.Header.OpCode != ws.OpText || !pc.Header.Fin {
		c.ack = c.ack[:0]
		return
	}
	if pc.First {
		c.ack = c.ack[:0]
	}
	if len(c.ack)+len(pc.Payload) <= len(ack) {
		c.ack = append(c.ack, pc.Payload...)
	} else {
		c.ack = append(c.ack[:0], 0) // too long to be the ack
	}
	if pc.Last && string(c.ack) == ack {
		c.ack = nil
		c.flags |= flagAcked              // its bytes wait (see OnTraffic)
		c.shard.loop.Defer(c.finishReset) // after the frame loop, once what followed the ack is known
	}
}

// finishReset ends a reset: the connection goes back to idle only if it is
// clean: no message half-received, no byte of a frame waiting. Otherwise
// part of the old session could reach the next one: it closes.
func (c *Conn) finishReset() {
	c.flags &^= flagAcked
	if c.state != StateReleasing {
		return // closed meanwhile
	}
	if !c.backend.KeepsConnections() || c.reader.InMessage() || c.gc.InboundBuffered() > 0 {
		c.close()
		c.shard.Signal()
		return
	}
	c.backend.Releases.Add(1)
	c.local.Releases.Add(1)
	c.shard.makeIdle(c, c.shard.now())
}

// OnTimer is c's deadline: ping when quiet, fail on a missing pong, end a
// reset. Loop-only.
func (c *Conn) OnTimer(now int64) {
	st := c.settings()
	w := c.shard.loop.Wheel()
	switch c.state {
	case StateReleasing:
		// The quiet period is measured on the precise clock: the shard
		// clock moves a tick at a time and would let a drain end after
		// almost no silence.
		quietFor := time.Duration(c.shard.preciseNow() - c.lastFrameAt)
		switch {
		case st.ResetAck == "" && quietFor >= st.ResetQuiet:
			c.finishReset()
		case now-c.releaseStart >= int64(st.ResetTimeout):
			c.countFailure()
			c.close()
		default:
			next := c.releaseStart + int64(st.ResetTimeout)
			if st.ResetAck == "" {
				next = min(next, now+int64(st.ResetQuiet-quietFor))
			}
			w.Schedule(&c.timer, next)
		}
	case StateIdle, StateLeased:
		if c.readPaused() {
			// Flow control, not the backend: check again a ping
			// interval after it reads again (the stall timeout judges
			// a backend that does not drain).
			c.flags &^= flagPingOutstanding
			w.Schedule(&c.timer, now+int64(st.PingInterval))
			return
		}
		if c.flags&flagPingOutstanding != 0 {
			if now-c.pingAt >= int64(st.PongTimeout) {
				c.countFailure()
				c.abortLease(codec.CloseInternalError, "backend ping timeout")
				c.close()
				return
			}
			w.Schedule(&c.timer, c.pingAt+int64(st.PongTimeout))
			return
		}
		if now-c.lastRead < int64(st.PingInterval) || c.flags&flagOutMidFrame != 0 {
			w.Schedule(&c.timer, max(c.lastRead, now)+int64(st.PingInterval))
			return
		}
		if err := c.writeOwn(ws.OpPing, nil); err != nil {
			return
		}
		c.flags |= flagPingOutstanding
		c.pingAt = now
		w.Schedule(&c.timer, now+int64(st.PongTimeout))
	}
}

// LeaseEnder is the relay's side of a leased connection: told when the
// pool must take the connection away (ping timeout, a removed backend's
// drain timeout, shutdown).
type LeaseEnder interface {
	LeaseEnded(code ws.StatusCode, reason string)
	// ReadPaused reports whether the relay stopped reading the
	// connection (its client is behind): the backend's silence, and a
	// pong left unread, are then the relay's doing, not the backend's.
	ReadPaused() bool
}

// readPaused reports whether a leased c is not being read by its relay.
func (c *Conn) readPaused() bool {
	if c.state != StateLeased || c.gc == nil {
		return false
	}
	e, ok := c.gc.Context().(LeaseEnder)
	return ok && e.ReadPaused()
}

// abortLease tells the session of a leased connection that it is going.
func (c *Conn) abortLease(code ws.StatusCode, reason string) {
	if c.state != StateLeased || c.gc == nil {
		return
	}
	if e, ok := c.gc.Context().(LeaseEnder); ok {
		c.unbind()
		e.LeaseEnded(code, reason)
	}
}
