package codec

import (
	"math"

	"github.com/gobwas/ws"
)

// FrameReader reads the frames of one direction of a connection as their
// bytes arrive, without waiting for whole data frames: it hands out a data
// frame's header with the first piece of its payload, then the rest in
// pieces as they come, unmasked. A relay forwards each piece at once
// (cut-through), so what it holds stays bounded whatever the frame size.
//
// It enforces what can be known from what has arrived: the header rules
// (ParseHeader), the frame limit and the message limit from each header,
// before any payload is taken; fragmentation order; and UTF-8 of text
// messages as their bytes arrive, so invalid text fails at the first piece
// that holds a bad byte, not at the end of the frame. Control frames (at
// most 125 bytes) are handed out whole.
//
// A FrameReader is owned by whoever owns the connection's inbound bytes.
// It keeps no reference to the bytes it is given and does not allocate.
type FrameReader struct {
	role       Role
	maxFrame   int64 // data frame payload limit; <= 0: none
	maxMessage int64 // message limit; <= 0: none

	frame   ws.Header // the data frame whose payload is arriving
	inFrame bool      // frame's payload is not all handed out
	taken   int64     // payload bytes of frame handed out (the mask offset)
	need    int       // bytes Next needs to make progress, counted from the start of its input

	msg  MessageState
	text UTF8Validator
}

// NewFrameReader returns a reader for role with the given limits (<= 0:
// none; a frame above maxFrame or a message above maxMessage is a 1009).
func NewFrameReader(role Role, maxFrame, maxMessage int64) FrameReader {
	return FrameReader{role: role, maxFrame: maxFrame, maxMessage: maxMessage}
}

// Piece is a part of a frame, as Next hands it out.
type Piece struct {
	Header  ws.Header // the frame's header, in every piece of it
	First   bool      // the piece starts the frame
	Last    bool      // the piece ends the frame
	Payload []byte    // this part of the payload, unmasked in place; a control frame's whole payload
	Offset  int64     // where Payload starts in the frame's payload (for masking it again)
}

// Next reads one piece from p, the bytes that have arrived and were not
// consumed yet. It returns the piece and how many bytes of p it consumed;
// the piece's Payload aliases p and is unmasked in place. n == 0 with a nil
// error means p holds too little to go on: call again once Need bytes have
// arrived. On error nothing more can be read: the error is a
// *ProtocolError with the close code to send.
func (r *FrameReader) Next(p []byte) (pc Piece, n int, err error) {
	if r.inFrame {
		return r.payload(p, Piece{Header: r.frame})
	}
	h, hn, err := ParseHeader(p, r.role, r.maxFrame)
	if err == ErrNeedMore {
		r.need = headerNeed(p)
		return pc, 0, nil
	}
	if err != nil {
		return pc, 0, err
	}
	if h.OpCode.IsControl() {
		total := hn + int(h.Length) // at most 14 + 125
		if len(p) < total {
			r.need = total
			return pc, 0, nil
		}
		payload := p[hn:total]
		if h.Masked {
			Mask(payload, h.Mask, 0)
		}
		return Piece{Header: h, First: true, Last: true, Payload: payload}, total, nil
	}
	if h.Length > int64(math.MaxInt-hn) {
		return pc, 0, protocolErr(CloseMessageTooBig, "frame too big")
	}
	if h.Length > 0 && len(p) == hn {
		// Wait for a first payload byte: header and payload then go out
		// together, and an empty piece is never handed out mid-frame.
		r.need = hn + 1
		return pc, 0, nil
	}
	if err := r.msg.Next(h, r.maxMessage); err != nil {
		return pc, 0, err
	}
	if h.OpCode == ws.OpText {
		r.text.Reset()
	}
	r.frame, r.inFrame, r.taken = h, true, 0
	pc, n, err = r.payload(p[hn:], Piece{Header: h, First: true})
	return pc, n + hn, err
}

// payload hands out what p holds of the current frame's payload.
func (r *FrameReader) payload(p []byte, pc Piece) (Piece, int, error) {
	left := r.frame.Length - r.taken
	k := int(min(left, int64(len(p))))
	if k == 0 && left > 0 {
		r.need = 1
		return Piece{}, 0, nil
	}
	pc.Payload = p[:k]
	pc.Offset = r.taken
	if r.frame.Masked {
		Mask(pc.Payload, r.frame.Mask, int(r.taken))
	}
	r.taken += int64(k)
	pc.Last = r.taken == r.frame.Length
	if r.msg.OpCode() == ws.OpText {
		if !r.text.Write(pc.Payload) || (pc.Last && r.frame.Fin && !r.text.Complete()) {
			return Piece{}, 0, protocolErr(CloseInvalidPayload, "invalid UTF-8 in text message")
		}
	}
	if pc.Last {
		r.inFrame = false
	}
	return pc, k, nil
}

// Need is how many bytes the last Next that returned nothing needs, counted
// from the start of the input it was given: the caller may wait until that
// many have arrived before calling again.
func (r *FrameReader) Need() int { return r.need }

// InFrame reports whether a data frame's payload is still arriving: the
// connection is in the middle of a frame.
func (r *FrameReader) InFrame() bool { return r.inFrame }

// InMessage reports whether a data message has started and not ended
// (mid-frame, or between the frames of a fragmented message).
func (r *FrameReader) InMessage() bool { return r.inFrame || r.msg.Open() }

// MessageOpCode is the opcode (text or binary) of the message in progress,
// or of the last one.
func (r *FrameReader) MessageOpCode() ws.OpCode { return r.msg.OpCode() }

// headerNeed is how many bytes the header at the start of p takes, as far
// as p tells (2 until the length byte has arrived).
func headerNeed(p []byte) int {
	if len(p) < 2 {
		return 2
	}
	n := 2
	switch p[1] & 0x7f {
	case 126:
		n += 2
	case 127:
		n += 8
	}
	if p[1]&0x80 != 0 {
		n += 4
	}
	return n
}
