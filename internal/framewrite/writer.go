package framewrite

import (
	crand "crypto/rand"
	"math/rand/v2"

	"github.com/gobwas/ws"
	"github.com/panjf2000/gnet/v2"

	"github.com/wsgate/wsgate/codec"
)

// Writer holds one loop's scratch space and mask source. Loop-only.
type Writer struct {
	hdr     [codec.MaxHeaderSize]byte
	iov     [2][]byte
	scratch []byte
	masks   *rand.ChaCha8
	key     [4]byte

	// Queued, if set, is called after a write that left c with bytes
	// queued where it had none: gnet then changed c's epoll interest
	// (flow control pauses it again).
	Queued func(c gnet.Conn)
}

// New returns a Writer with its own mask stream.
func New() *Writer {
	var seed [32]byte
	_, _ = crand.Read(seed[:]) // never fails on Linux
	return &Writer{masks: rand.NewChaCha8(seed), scratch: make([]byte, 0, 256)}
}

// Key is a fresh masking key.
func (w *Writer) Key() [4]byte {
	_, _ = w.masks.Read(w.key[:])
	return w.key
}

// Frame writes a whole frame: h (its Length set from payload) and payload,
// in one writev. With mask, a fresh key is chosen and payload is masked in
// place. The error is gnet's: the connection is closed then (and its
// OnClose has run).
func (w *Writer) Frame(c gnet.Conn, h ws.Header, payload []byte, mask bool) error {
	h.Length = int64(len(payload))
	_, err := w.Start(c, h, payload, mask)
	return err
}

// Own writes a frame of the gateway's own (pong, close, ping, reset, the
// session start): payload is copied first, so the caller's bytes stay as
// they are.
func (w *Writer) Own(c gnet.Conn, op ws.OpCode, payload []byte, mask bool) error {
	w.scratch = append(w.scratch[:0], payload...)
	return w.Frame(c, ws.Header{Fin: true, OpCode: op}, w.scratch, mask)
}

// Start writes the header of a frame of h.Length payload bytes with its
// first piece, in one writev. With mask it picks a fresh key, masks piece
// in place and returns the key for the frame's later pieces.
func (w *Writer) Start(c gnet.Conn, h ws.Header, piece []byte, mask bool) ([4]byte, error) {
	h.Masked = mask
	h.Rsv = 0
	if mask {
		h.Mask = w.Key()
		codec.Mask(piece, h.Mask, 0)
	}
	n := codec.PutHeader(w.hdr[:], h)
	w.iov[0], w.iov[1] = w.hdr[:n], piece
	err := w.writev(c)
	return h.Mask, err
}

// Continue writes a later piece of a frame begun with Start, offset bytes
// into its payload; with mask, it is masked in place with the frame's key.
func (w *Writer) Continue(c gnet.Conn, piece []byte, key [4]byte, offset int64, mask bool) error {
	if len(piece) == 0 {
		return nil
	}
	if mask {
		codec.Mask(piece, key, int(offset))
	}
	before := c.OutboundBuffered()
	_, err := c.Write(piece)
	w.queued(c, before, err)
	return err
}

func (w *Writer) writev(c gnet.Conn) error {
	before := c.OutboundBuffered()
	_, err := c.Writev(w.iov[:])
	w.iov[0], w.iov[1] = nil, nil
	w.queued(c, before, err)
	return err
}

func (w *Writer) queued(c gnet.Conn, before int, err error) {
	if err == nil && before == 0 && w.Queued != nil && c.OutboundBuffered() > 0 {
		w.Queued(c)
	}
}

// Scratch is a buffer to build a response in before writing it; it is the
// writer's, valid until the next call.
func (w *Writer) Scratch() []byte { return w.scratch[:0] }

// Close writes a close frame with code and reason (none for
// codec.CloseNoStatus), masked toward a server.
func (w *Writer) Close(c gnet.Conn, code ws.StatusCode, reason string, mask bool) error {
	var p [2 + codec.MaxCloseReason]byte
	n := 0
	if code != codec.CloseNoStatus && code != 0 {
		n = codec.PutClosePayload(p[:], code, reason)
	}
	return w.Own(c, ws.OpClose, p[:n], mask)
}
