package relay

import (
	"github.com/gobwas/ws"
	"github.com/panjf2000/gnet/v2"

	"github.com/wsgate/wsgate/codec"
	"github.com/wsgate/wsgate/pool"
	"github.com/wsgate/wsgate/server"
)

// backendSide is a leased backend connection's gnet handler: the backend's
// frames go to the client from here. It is also the connection's flow gate
// (server.Resumer) and hears when the pool takes the connection away
// (pool.LeaseEnder). One per lease; Loop-only.
type backendSide struct {
	b *binding
	c *pool.Conn
	// pongBound: paused because pongs piled up toward a backend that
	// pings and does not read (see onPiece); it then resumes only once
	// its own queue drained too.
	pongBound bool
}

// current reports whether this side's connection is still the session's.
func (d *backendSide) current() bool { return d.b.conn == d.c }

// OnOpen never runs: a connection is leased after it opened.
func (d *backendSide) OnOpen(gnet.Conn) {}

// OnTraffic relays what the backend sent.
func (d *backendSide) OnTraffic() gnet.Action {
	if !d.current() {
		return gnet.None // released during this callback: the pool decides on these bytes
	}
	sh := d.b.s.Shard()
	if sh.Paused(d.c.Gnet()) {
		sh.Repause(d.c.Gnet()) // gnet read once after its queue emptied
		return gnet.None
	}
	d.relay()
	return gnet.None
}

// readBuffered relays what stayed buffered (after a pause, before the
// bind). Deferred work.
func (d *backendSide) readBuffered() {
	if d.current() && !d.b.s.Shard().Paused(d.c.Gnet()) {
		d.relay()
	}
}

// relay reads the backend's frames piece by piece: data pieces go to the
// client as they are, control frames are answered here. It stops when the
// client's queue passes the high watermark (the backend is paused), when
// the session or the connection ends, or when the buffer is used up.
func (d *backendSide) relay() {
	b, c := d.b, d.c
	gc := c.Gnet()
	sh := b.s.Shard()
	client := b.s.Conn()
	w := sh.Writer()
	w.Batch(client) // every piece of this read toward the client in one writev
	buf, _ := gc.Peek(-1)
	off := 0
	c.NoteRead()
	for off < len(buf) && d.current() {
		pc, n, err := c.Reader().Next(buf[off:min(len(buf), off+pieceMax)])
		if err != nil {
			_ = w.Flush() // what came before the error goes through
			d.protocolError(err)
			return // the connection is closing: its buffer goes with it
		}
		if n == 0 {
			break
		}
		off += n
		if !d.onPiece(pc) {
			break
		}
		// Only the client's queue pauses the backend. Its own queue (what
		// the client sent) must not: a backend that writes before it reads
		// again would then wait for us while we wait for it.
		if client.OutboundBuffered()+w.Pending(client) > sh.High() {
			sh.Pause(gc, d) // resumes once the client's queue drained
			break
		}
	}
	_ = w.Flush() // before Discard frees the pieces
	if off > 0 && c.Gnet() == gc && gc.InboundBuffered() >= off {
		_, _ = gc.Discard(off)
	}
}

// onPiece handles one piece of a backend frame; false stops reading.
func (d *backendSide) onPiece(pc codec.Piece) bool {
	b, c := d.b, d.c
	switch pc.Header.OpCode {
	case ws.OpPing:
		if c.Pong(pc.Payload) != nil {
			return false
		}
		// The client's data stops at about High + a piece (the client is
		// paused); past that, the queue is pongs to a backend that pings
		// and does not read: stop reading it until it does.
		if sh := b.s.Shard(); c.Gnet().OutboundBuffered() > 2*sh.High()+pieceMax {
			d.pongBound = true
			sh.Pause(c.Gnet(), d)
			return false
		}
		return true
	case ws.OpPong:
		return true
	case ws.OpClose:
		code, reason, err := codec.ParseClosePayload(pc.Payload)
		if err != nil {
			d.protocolError(err)
			return false
		}
		b.dropBackend(0) // not reused: the pool answers its close (1000) and closes it
		b.backendClosed(clientCloseCode(code), string(reason))
		return false
	}
	if err := b.s.WritePiece(pc); err != nil {
		return false // the session is gone (its Closed released the connection)
	}
	b.s.DrainActivity()
	return true
}

// protocolError: the backend broke the protocol. Its connection is closed
// with the matching code; the client gets 1011.
func (d *backendSide) protocolError(err error) {
	code := codec.CloseProtocolError
	if pe, ok := err.(*codec.ProtocolError); ok {
		code = pe.Code
	}
	d.b.dropBackend(code)
	d.b.backendEnded(codec.CloseInternalError, "backend protocol error")
}

// clientCloseCode is the close code a client gets when its backend closed
// with code: every code a peer may send (RFC 6455 7.4: 1000-1003,
// 1007-1014, 3000-4999) passes on unchanged; a close without a code
// (1005: an empty payload) becomes 1011, as 1006 and 1015 would.
func clientCloseCode(code ws.StatusCode) ws.StatusCode {
	if codec.ValidCloseCode(code) {
		return code
	}
	return codec.CloseInternalError
}

// CloseNotify: the connection is closing after this callback (see
// pool.Conn.CloseNotify).
func (d *backendSide) CloseNotify() { d.c.CloseNotify() }

// OnClose: the backend connection ended under the session (TCP lost, or
// gnet closed it after a failed write).
func (d *backendSide) OnClose(err error) {
	if d.current() {
		d.b.conn = nil
		d.b.backendEnded(codec.CloseInternalError, "backend connection lost")
	}
	d.c.OnClose(err)
}

// LeaseEnded: the pool takes the connection away (a ping went unanswered,
// the backend was removed and its drain timeout passed, shutdown).
func (d *backendSide) LeaseEnded(code ws.StatusCode, reason string) {
	if d.current() {
		d.b.s.Shard().Unpause(d.c.Gnet())
		d.b.conn = nil
		d.b.backendEnded(code, reason)
	}
}

// ReadPaused: the relay is not reading the connection (see pool.LeaseEnder).
func (d *backendSide) ReadPaused() bool {
	return d.current() && d.b.s.Shard().Paused(d.c.Gnet())
}

// MayResume: the backend connection is read again once the client's queue
// is below the low watermark (and its own, if pongs paused it).
func (d *backendSide) MayResume() bool {
	sh := d.b.s.Shard()
	if d.b.s.Conn().OutboundBuffered() >= sh.Low() {
		return false
	}
	return !d.pongBound || d.c.Gnet().OutboundBuffered() < sh.Low()
}

// Resumed relays what stayed buffered while paused.
func (d *backendSide) Resumed() {
	d.pongBound = false
	d.readBuffered()
}

// Stalled: a queue did not drain for the stall timeout. If it is the
// client's, the client stopped reading (1008); if it is the backend's own
// (its pongs), the backend stopped reading: it is failed.
func (d *backendSide) Stalled() {
	if !d.current() {
		return
	}
	b := d.b
	if b.s.Conn().OutboundBuffered() >= b.s.Shard().Low() {
		b.s.CloseFor(server.ClosePolicySlowConsumer, "slow consumer: not reading", server.ReasonSlowConsumer)
		return
	}
	b.dropBackend(codec.ClosePolicyViolation)
	b.backendEnded(codec.CloseTryAgainLater, "backend is not keeping up")
}

var (
	_ server.ConnHandler = (*backendSide)(nil)
	_ server.Resumer     = (*backendSide)(nil)
	_ pool.LeaseEnder    = (*backendSide)(nil)
)
