package pool

import (
	"encoding/binary"
	"errors"
	"sync/atomic"
	"time"

	"github.com/gobwas/ws"
	"github.com/panjf2000/gnet/v2"

	"github.com/wsgate/wsgate/codec"
	"github.com/wsgate/wsgate/internal/wheel"
)

// State is where a backend connection is in its life.
type State uint8

const (
	StateDialing   State = iota // reserved, being dialed off-loop
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
	flagBroken                                // must not be reused (protocol error, partial write)
	flagInTraffic                             // OnTraffic's frame loop is running
	flagReleasePending                        // released during OnTraffic; finish after the loop
	flagPendingClean                          // the pending release was clean
	flagResetAcked                            // releasing: the reset ack arrived; finish after the frame loop
	flagMoving                                // handed to another shard: this loop's copy is closing quietly
)

// Peer is the session a leased connection relays to. Loop-only.
type Peer interface {
	// FromBackend delivers one validated data frame, header and payload
	// exactly as received (unmasked). The bytes are valid during the call.
	FromBackend(h ws.Header, frame []byte)
	// BackendGone says the connection failed under the session; it will
	// not be reused. code and reason are for the client's close frame.
	BackendGone(code ws.StatusCode, reason string)
}

// Conn is one WebSocket connection to a backend, enrolled on its shard's
// loop. Loop-only, except enrolled (set on the loop, read by Enroll).
type Conn struct {
	gc      gnet.Conn // nil until enrolled
	shard   *Shard
	slot    *slot
	backend *Backend
	state   State
	flags   connFlags
	peer    Peer // the session while leased

	prev, next *Conn       // ring links while idle
	timer      wheel.Timer // ping, pong, reset deadlines

	expires      int64 // shard clock: retire after this (lifetime with jitter)
	idleSince    int64 // shard clock: when it last became idle
	lastRead     int64 // shard clock: last inbound bytes
	pingAt       int64 // shard clock: outstanding ping sent
	releaseStart int64 // shard clock: reset began
	lastFrameAt  int64 // precise clock (Shard.preciseNow): last inbound bytes, for the reset's quiet period
	need         int   // inbound bytes needed before parsing is worth trying

	transferGroup string // set on a connection moved from another shard, for the group that asked for it

	msg  codec.MessageState  // backend-to-client data messages
	text codec.UTF8Validator // UTF-8 state of the backend's text message

	enrolled atomic.Bool // OnOpen ran (read by Enroll off-loop)
}

// Backend is the backend this connection goes to.
func (c *Conn) Backend() *Backend { return c.backend }

// State is the connection's current state.
func (c *Conn) State() State { return c.state }

func (c *Conn) settings() *Settings { return c.backend.Settings() }

// Bind attaches the session that leased c.
func (c *Conn) Bind(p Peer) { c.peer = p }

// OverBudget reports whether bytes queued toward the backend passed the
// write budget (the backend reads slower than the client sends).
func (c *Conn) OverBudget() bool {
	return c.gc.OutboundBuffered() > c.shard.pool.cfg.WriteBufferLimit
}

// Forward writes a client frame to the backend: payload is the unmasked
// payload (as the server validated it); it is masked again in place with
// the client's own key, so the frame goes out as the client sent it.
func (c *Conn) Forward(h ws.Header, payload []byte) error {
	return c.shard.writeMasked(c.gc, h, payload)
}

// SendText writes a text message of the proxy's own (session start).
func (c *Conn) SendText(msg []byte) error {
	return c.shard.writeOwn(c.gc, ws.OpText, msg)
}

// MarkBroken keeps c from being reused (a frame may be half-written).
func (c *Conn) MarkBroken() { c.flags |= flagBroken }

// setState moves c to st, keeping its slot's and backend's counters equal
// to the real state. The old state's counters go down before the new
// one's go up, so a concurrent reader summing them never sees more
// connections than exist (capacity decisions use Total, a single atomic).
func (c *Conn) setState(st State) {
	if c.state == st {
		return
	}
	if from := stateCounter(&c.slot.Counters, c.state); from != nil {
		from.Add(-1)
		stateCounter(&c.backend.Counters, c.state).Add(-1)
	}
	if to := stateCounter(&c.slot.Counters, st); to != nil {
		to.Add(1)
		stateCounter(&c.backend.Counters, st).Add(1)
	}
	if st == StateClosed {
		c.slot.Total.Add(-1)
		c.backend.Total.Add(-1)
		c.slot.Closed.Add(1)
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

// Opened is gnet's OnOpen for an enrolled connection: it becomes idle.
// A connection moved from another shard keeps its lifetime and is not a
// new enrollment. Loop-only (called by the server's event handler).
func (c *Conn) Opened(gc gnet.Conn) {
	sh := c.shard
	c.gc = gc
	now := sh.now()
	c.slot.conns[c] = struct{}{}
	c.enrolled.Store(true)
	moved := c.transferGroup
	c.transferGroup = ""
	if moved == "" {
		c.lastRead = now
		c.expires = now + sh.clockJitter(c.settings().MaxLifetime, 0.1)
		c.backend.Enrolled.Add(1)
		c.slot.Enrolled.Add(1)
		c.backend.DialSucceeded()
	}
	sh.makeIdle(c, now) // grants it to a waiting session, if any
	if moved != "" {
		sh.transferSettled(moved, true)
	}
	sh.Signal()
}

// reusable reports whether c may serve another session.
func (c *Conn) reusable(now int64) bool {
	return c.flags&(flagBroken|flagClosing) == 0 && !c.msg.Open() && now < c.expires
}

// close sends close 1000 and asks gnet to close c; OnClosed does the
// bookkeeping. Loop-only, and not from c's own OnTraffic (return
// gnet.Close there instead).
func (c *Conn) close() { c.closeWith(codec.CloseNormal) }

func (c *Conn) closeWith(code ws.StatusCode) {
	if c.flags&flagClosing != 0 || c.gc == nil || c.state == StateClosed {
		return
	}
	c.flags |= flagClosing
	if p := c.peer; p != nil {
		// Still leased (the server is stopping): the session must stop
		// relaying to a connection that is going away.
		c.peer = nil
		p.BackendGone(code, "backend connection closed by the gateway")
	}
	c.slot.unlink(c)
	c.shard.wheel.Stop(&c.timer)
	c.setState(StateClosing)
	if c.flags&flagBroken == 0 {
		c.writeClose(code)
	}
	_ = c.gc.Close() // gnet flushes the close frame first
}

// writeClose writes a (masked) close frame with code and no reason.
func (c *Conn) writeClose(code ws.StatusCode) {
	var p [2]byte
	binary.BigEndian.PutUint16(p[:], uint16(code))
	_ = c.shard.writeOwn(c.gc, ws.OpClose, p[:])
}

// fail ends c because something went wrong with it: the session (if any)
// hears about it, the failure is counted and reconcile is signalled.
func (c *Conn) fail(code ws.StatusCode, reason string) {
	c.backend.Failures.Add(1)
	c.slot.Failures.Add(1)
	c.flags |= flagBroken
	if p := c.peer; p != nil {
		c.peer = nil
		p.BackendGone(code, reason)
	}
}

// OnClosed is gnet's OnClose: the connection is gone. Loop-only.
func (c *Conn) OnClosed(err error) {
	if c.state == StateClosed {
		return
	}
	if c.flags&flagMoving != 0 {
		// Handed to another shard: the socket lives on there (a duplicate
		// descriptor); the counters moved with it (see Shard.giveAway).
		c.slot.unlink(c)
		c.shard.wheel.Stop(&c.timer)
		delete(c.slot.conns, c)
		c.state = StateClosed
		return
	}
	if c.flags&flagClosing == 0 {
		// Not our doing: the backend or the network ended it.
		c.fail(codec.CloseInternalError, "backend connection lost")
	}
	c.flags |= flagClosing
	c.slot.unlink(c)
	c.shard.wheel.Stop(&c.timer)
	delete(c.slot.conns, c)
	c.setState(StateClosed)
	c.shard.Signal()
}

// OnTraffic reads the backend's frames: control frames are answered here,
// data frames go to the session while leased, close the connection while
// idle (a backend that sends unprompted cannot be trusted with the next
// session), and are dropped while releasing, until the reset ack. Loop-only.
//
// Anything a frame triggers may re-enter the pool: relaying to the client
// can fail and close the session, which releases this connection; a write
// here can fail and close this connection. So the loop stops as soon as
// the connection is closed or released, and a release that happens during
// the loop is finished after it (finishPendingRelease): frames still
// buffered from the old session must never reach the next one.
func (c *Conn) OnTraffic() gnet.Action {
	gc := c.gc
	c.lastRead = c.shard.now()
	c.lastFrameAt = c.shard.preciseNow()
	if c.flags&(flagClosing|flagMoving) != 0 {
		_, _ = gc.Discard(-1)
		return gnet.None
	}
	if c.need > 0 && gc.InboundBuffered() < c.need {
		return gnet.None
	}
	cfg := &c.shard.pool.cfg
	buf, _ := gc.Peek(-1)
	off := 0
	c.need = 0
	c.flags |= flagInTraffic
	action := gnet.None
	for off < len(buf) {
		h, hn, total, err := codec.SplitFrame(buf[off:], codec.RoleClient, cfg.MaxFrameBytes)
		if errors.Is(err, codec.ErrNeedMore) {
			c.need = total
			break
		}
		if err != nil {
			action = c.protocolFailure(err)
			break
		}
		frame := buf[off : off+total]
		off += total
		if action = c.onFrame(h, frame, frame[hn:]); action != gnet.None {
			break
		}
		if c.flags&(flagClosing|flagReleasePending|flagResetAcked) != 0 {
			break
		}
	}
	c.flags &^= flagInTraffic
	if c.state == StateClosed {
		return gnet.None // gnet closed it under us: its buffers are gone
	}
	if action != gnet.None {
		return action
	}
	if off > 0 { // Discard(0) would drop everything (gnet: n <= 0 means all)
		_, _ = gc.Discard(off)
	}
	switch {
	case c.flags&flagReleasePending != 0:
		c.finishPendingRelease()
	case c.flags&flagResetAcked != 0:
		c.flags &^= flagResetAcked
		c.finishReset()
	}
	return gnet.None
}

func (c *Conn) onFrame(h ws.Header, frame, payload []byte) gnet.Action {
	c.flags &^= flagPingOutstanding
	switch h.OpCode {
	case ws.OpPing:
		// A backend that pings and never reads must not grow our queue
		// toward it without bound.
		if c.gc.OutboundBuffered() > c.shard.pool.cfg.WriteBufferLimit {
			return c.failWith(codec.ClosePolicyViolation, "backend does not read: pongs pile up")
		}
		_ = c.shard.writeOwn(c.gc, ws.OpPong, payload)
		return gnet.None
	case ws.OpPong:
		return gnet.None
	case ws.OpClose:
		code, _, err := codec.ParseClosePayload(payload)
		if err != nil {
			return c.protocolFailure(err)
		}
		// The backend is going away: answer, close, and tell the session.
		// A normal or going-away close passes on its code; anything else
		// is an internal error from the client's point of view.
		switch code {
		case codec.CloseNormal, codec.CloseGoingAway, ws.StatusCode(1012), codec.CloseTryAgainLater:
		case codec.CloseNoStatus:
			code = codec.CloseNormal
		default:
			code = codec.CloseInternalError
		}
		c.writeClose(codec.CloseNormal)
		c.fail(code, "backend closed the connection")
		c.flags |= flagClosing
		return gnet.Close
	}
	cfg := &c.shard.pool.cfg
	if err := c.msg.Next(h, cfg.MaxMessageBytes); err != nil {
		return c.protocolFailure(err)
	}
	if c.msg.OpCode() == ws.OpText {
		if h.OpCode == ws.OpText {
			c.text.Reset()
		}
		if !c.text.Write(payload) || (h.Fin && !c.text.Complete()) {
			return c.protocolFailure(&codec.ProtocolError{Code: codec.CloseInvalidPayload, Reason: "invalid UTF-8 from backend"})
		}
	}
	switch c.state {
	case StateLeased:
		if c.peer != nil {
			c.peer.FromBackend(h, frame)
		}
	case StateReleasing:
		c.checkResetAck(h, payload)
	default:
		// Idle: the backend sends with no session to send for. Whatever it
		// sends next could reach the next session: the connection goes.
		c.backend.Stray.Add(1)
		c.slot.Stray.Add(1)
		return c.failWith(codec.ClosePolicyViolation, "backend sent data on an idle connection")
	}
	return gnet.None
}

// protocolFailure closes a connection whose backend broke the protocol.
func (c *Conn) protocolFailure(err error) gnet.Action {
	var perr *codec.ProtocolError
	code := codec.CloseProtocolError
	if errors.As(err, &perr) {
		code = perr.Code
	}
	return c.failWith(code, "backend protocol error")
}

// failWith ends a connection from its own OnTraffic: the backend gets a
// close frame with code, the session (if any) a 1011, reconcile a signal.
func (c *Conn) failWith(code ws.StatusCode, reason string) gnet.Action {
	c.writeClose(code)
	c.fail(codec.CloseInternalError, reason)
	c.flags |= flagClosing
	return gnet.Close
}

// startReset begins PolicyReset: send the reset message and wait for the
// ack (or a quiet period) before going idle.
func (c *Conn) startReset(now int64) {
	st := c.settings()
	c.setState(StateReleasing)
	c.releaseStart = now
	c.lastRead = now
	c.lastFrameAt = c.shard.preciseNow()
	if st.ResetMessage != "" {
		if err := c.SendText([]byte(st.ResetMessage)); err != nil || c.state != StateReleasing {
			return // closed by the write failure
		}
	}
	deadline := now + int64(st.ResetTimeout)
	if st.ResetAck == "" {
		deadline = min(deadline, now+int64(st.ResetQuiet))
	}
	c.shard.wheel.Schedule(&c.timer, deadline)
}

// checkResetAck notes the ack; the reset finishes after the frame loop,
// once what followed the ack in the same read is known.
func (c *Conn) checkResetAck(h ws.Header, payload []byte) {
	st := c.settings()
	if st.ResetAck != "" && h.Fin && h.OpCode == ws.OpText && string(payload) == st.ResetAck {
		c.flags |= flagResetAcked
	}
}

// finishReset ends a reset: the connection goes back to idle only if it is
// clean: no message half-received, no byte of a frame waiting. Otherwise
// part of the old session could reach the next one: it closes.
func (c *Conn) finishReset() {
	if !c.backend.KeepsConnections() || c.msg.Open() || c.gc.InboundBuffered() > 0 {
		c.close()
		c.shard.Signal()
		return
	}
	c.backend.Releases.Add(1)
	c.slot.Releases.Add(1)
	c.shard.makeIdle(c, c.shard.now())
}

// OnTimer is c's deadline: ping when quiet, fail on a missing pong, end a
// reset. Loop-only.
func (c *Conn) OnTimer(now int64) {
	st := c.settings()
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
			c.backend.Failures.Add(1)
			c.slot.Failures.Add(1)
			c.close()
		default:
			next := c.releaseStart + int64(st.ResetTimeout)
			if st.ResetAck == "" {
				next = min(next, now+int64(st.ResetQuiet-quietFor))
			}
			c.shard.wheel.Schedule(&c.timer, next)
		}
	case StateIdle, StateLeased:
		if c.flags&flagPingOutstanding != 0 {
			if now-c.pingAt >= int64(st.PongTimeout) {
				c.fail(codec.CloseInternalError, "backend ping timeout")
				c.close()
				return
			}
			c.shard.wheel.Schedule(&c.timer, c.pingAt+int64(st.PongTimeout))
			return
		}
		if now-c.lastRead < int64(st.PingInterval) {
			c.shard.wheel.Schedule(&c.timer, c.lastRead+int64(st.PingInterval))
			return
		}
		if err := c.shard.writeOwn(c.gc, ws.OpPing, nil); err != nil {
			return
		}
		c.flags |= flagPingOutstanding
		c.pingAt = now
		c.shard.wheel.Schedule(&c.timer, now+int64(st.PongTimeout))
	}
}
