package server

import (
	"github.com/gobwas/ws"
	"github.com/valyala/bytebufferpool"

	"github.com/wsgate/wsgate/codec"
)

// Handler decides what a session does. Every method is Loop-only and must
// not block.
type Handler interface {
	// Upgrade sees a valid upgrade request before the 101 goes out; an
	// error (a *codec.HandshakeError to choose the status) refuses it.
	Upgrade(s *Session, req *codec.UpgradeRequest) error
	// Opened runs once the 101 is written, before any frame is read.
	Opened(s *Session)
	// Frame gets each validated data frame, payload unmasked. The payload
	// is only valid during the call.
	Frame(s *Session, h ws.Header, payload []byte)
	// Closed is called once when the connection is gone.
	Closed(s *Session, reason CloseReason)
}

// HoldExpirer is a Handler that learns when a session's hold ran out (the
// session is about to be closed 1013), before the close completes.
type HoldExpirer interface {
	HoldExpired(s *Session)
}

// Echo sends every message back whole: single frames at once, fragmented
// messages once their last fragment arrived (reassembled in a pooled
// buffer bounded by the message limit).
type Echo struct{}

func (Echo) Upgrade(*Session, *codec.UpgradeRequest) error { return nil }

func (Echo) Opened(*Session) {}

func (Echo) Frame(s *Session, h ws.Header, payload []byte) {
	if h.Fin && h.OpCode != ws.OpContinuation {
		s.WriteMessage(h.OpCode, true, payload)
		return
	}
	buf, _ := s.Data.(*bytebufferpool.ByteBuffer)
	if buf == nil {
		buf = bytebufferpool.Get()
		s.Data = buf
	}
	_, _ = buf.Write(payload)
	if h.Fin {
		// Detach the buffer before the write: a failed write closes the
		// connection inside it, and Closed must not return the buffer to
		// the pool too (two later sessions would share it).
		s.Data = nil
		s.WriteMessage(s.MessageOpCode(), true, buf.B)
		bytebufferpool.Put(buf)
	}
}

func (Echo) Closed(s *Session, _ CloseReason) {
	if buf, ok := s.Data.(*bytebufferpool.ByteBuffer); ok {
		s.Data = nil
		bytebufferpool.Put(buf)
	}
}
