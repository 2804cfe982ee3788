package server

import (
	"github.com/gobwas/ws"
	"github.com/valyala/bytebufferpool"

	"github.com/wsgate/wsgate/codec"
)

// Echo sends every message back whole: a message that arrives in one
// frame at once goes back from the inbound buffer as it is; one that
// arrives in pieces (fragments, or a frame split across reads) is gathered
// in a pooled buffer bounded by the message limit and sent back once its
// last byte arrived. A client that does not read its echoes is paused past
// the high watermark, not closed; it is closed 1008 only once it has not
// read for the stall timeout.
type Echo struct{}

// Upgrade accepts every request.
func (Echo) Upgrade(s *Session, _ *codec.UpgradeRequest) (SessionHandler, error) {
	return &echoSession{s: s}, nil
}

// echoSession is one session's echo. Loop-only.
type echoSession struct {
	s   *Session
	buf *bytebufferpool.ByteBuffer // the message gathered so far; nil between messages
}

func (e *echoSession) Opened() {}

func (e *echoSession) Data(pc codec.Piece) bool {
	s := e.s
	whole := pc.First && pc.Last && pc.Header.Fin && pc.Header.OpCode != ws.OpContinuation
	payload := pc.Payload
	if !whole {
		if e.buf == nil {
			e.buf = bytebufferpool.Get()
		}
		_, _ = e.buf.Write(pc.Payload)
		if !pc.Last || !pc.Header.Fin {
			return true
		}
		payload = e.buf.B
	}
	// Detach the buffer before the write: a failed write closes the
	// connection inside it, and Closed must not return the buffer to the
	// pool too (two later sessions would share it).
	buf := e.buf
	e.buf = nil
	if buf == nil {
		s.shard.writer.Batch(s.conn) // straight from the inbound buffer: echoes of one read go out in one writev
	} else {
		_ = s.shard.writer.Flush() // the gathered buffer goes back to the pool right after the write
	}
	_ = s.Write(s.reader.MessageOpCode(), true, payload)
	if buf != nil {
		bytebufferpool.Put(buf)
	}
	if s.conn.OutboundBuffered()+s.shard.writer.Pending(s.conn) > s.shard.High() {
		s.Pause() // resumes once the client read its echoes
		return false
	}
	return true
}

// Failing fails at once: the echoes of earlier messages went out already.
func (e *echoSession) Failing(*codec.ProtocolError) bool { return false }

func (e *echoSession) Closed(CloseReason) {
	if e.buf != nil {
		bytebufferpool.Put(e.buf)
		e.buf = nil
	}
}
