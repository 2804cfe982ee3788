package framewrite

import (
	crand "crypto/rand"
	"math/rand/v2"

	"github.com/gobwas/ws"
	"github.com/panjf2000/gnet/v2"

	"github.com/wsgate/wsgate/codec"
)

// Batching: a loop that reads many frames from one connection in one
// callback (a busy client, a backend answering many sessions' worth of
// messages) writes them to the same peer. Written one writev each, a batch
// of N frames costs N system calls, most of a proxy's CPU; gathered and
// written with one writev, it costs one, as a byte-copying proxy pays.
// Batch(c) starts gathering what is written to c; Flush writes it. The
// payloads gathered must stay valid until Flush (they point into the
// reading connection's inbound buffer: flush before discarding it).
const (
	batchMaxIov   = 512      // iovecs gathered before an early flush (IOV_MAX is 1024)
	batchMaxBytes = 64 << 10 // payload bytes gathered before an early flush
	arenaSize     = 4 << 10  // headers and small owned payloads gathered (about 280 frames)
)

// Writer holds one loop's scratch space, mask source and batch. Loop-only.
type Writer struct {
	hdr     [codec.MaxHeaderSize]byte
	iov     [2][]byte
	scratch []byte
	masks   *rand.ChaCha8
	key     [4]byte

	batch      gnet.Conn // gathering what is written to it; nil: writes go out at once
	batchIov   [][]byte  // gathered pieces, in order
	batchBytes int       // payload and header bytes gathered
	arena      []byte    // gathered headers and owned payloads (cap arenaSize, never grows)

	// Queued, if set, is called after a write that left c with bytes
	// queued where it had none: gnet then changed c's epoll interest
	// (flow control pauses it again).
	Queued func(c gnet.Conn)
}

// New returns a Writer with its own mask stream.
func New() *Writer {
	var seed [32]byte
	_, _ = crand.Read(seed[:]) // never fails on Linux
	return &Writer{
		masks:    rand.NewChaCha8(seed),
		scratch:  make([]byte, 0, 256),
		batchIov: make([][]byte, 0, batchMaxIov),
		arena:    make([]byte, 0, arenaSize),
	}
}

// Key is a fresh masking key.
func (w *Writer) Key() [4]byte {
	_, _ = w.masks.Read(w.key[:])
	return w.key
}

// Batch gathers what is written to c until Flush (a batch toward another
// connection is flushed first).
func (w *Writer) Batch(c gnet.Conn) {
	if w.batch != c {
		_ = w.Flush()
		w.batch = c
	}
}

// Pending is how many bytes are gathered toward c, not yet written: count
// them with c's queue for flow control.
func (w *Writer) Pending(c gnet.Conn) int {
	if w.batch != c {
		return 0
	}
	return w.batchBytes
}

// Forget is c closing (gnet's OnClose). What was gathered toward c is
// dropped: its descriptor may already belong to another connection. What
// was gathered toward another connection is written now: its pieces may
// be c's bytes (relayed from c's inbound buffer by reference), which gnet
// gives back to its pool once OnClose returns.
func (w *Writer) Forget(c gnet.Conn) {
	if w.batch == nil {
		return
	}
	if w.batch.Fd() != c.Fd() { // c may be the raw connection under a TLS one
		_ = w.flushKeep()
		return
	}
	w.batch = nil
	clear(w.batchIov)
	w.batchIov = w.batchIov[:0]
	w.batchBytes = 0
	w.arena = w.arena[:0]
}

// Flush writes what was gathered, in one writev, and stops gathering. The
// error is gnet's: the connection is closed then (its OnClose has run).
func (w *Writer) Flush() error {
	c := w.batch
	w.batch = nil
	if c == nil || len(w.batchIov) == 0 {
		return nil
	}
	before := c.OutboundBuffered()
	_, err := c.Writev(w.batchIov)
	clear(w.batchIov)
	w.batchIov = w.batchIov[:0]
	w.batchBytes = 0
	w.arena = w.arena[:0]
	w.queued(c, before, err)
	return err
}

// Frame writes a whole frame: h (its Length set from payload) and payload.
// With mask, a fresh key is chosen and payload is masked in place. The
// error is gnet's: the connection is closed then (and its OnClose has
// run).
func (w *Writer) Frame(c gnet.Conn, h ws.Header, payload []byte, mask bool) error {
	h.Length = int64(len(payload))
	_, err := w.Start(c, h, payload, mask)
	return err
}

// Own writes a frame of the gateway's own (pong, close, ping, reset, the
// session start): payload is copied first, so the caller's bytes stay as
// they are.
func (w *Writer) Own(c gnet.Conn, op ws.OpCode, payload []byte, mask bool) error {
	if c == w.batch && len(payload) <= 125 {
		if !w.fits(codec.MaxHeaderSize+len(payload)) || len(w.batchIov)+2 > batchMaxIov {
			if err := w.flushKeep(); err != nil {
				return err
			}
		}
		n := len(w.arena)
		w.arena = append(w.arena, payload...)
		return w.Frame(c, ws.Header{Fin: true, OpCode: op}, w.arena[n:], mask)
	}
	w.scratch = append(w.scratch[:0], payload...)
	if c != w.batch {
		return w.Frame(c, ws.Header{Fin: true, OpCode: op}, w.scratch, mask)
	}
	// Too large for the arena, toward the connection being batched: what
	// is gathered goes first, then this frame at once. (Gathered, scratch
	// would be overwritten by the next Own before the flush.)
	if err := w.flushKeep(); err != nil {
		return err
	}
	h := ws.Header{Fin: true, OpCode: op, Length: int64(len(w.scratch)), Masked: mask}
	if mask {
		h.Mask = w.Key()
		codec.Mask(w.scratch, h.Mask, 0)
	}
	return w.writeNow(c, h, w.scratch)
}

// Start writes the header of a frame of h.Length payload bytes with its
// first piece. With mask it picks a fresh key, masks piece in place and
// returns the key for the frame's later pieces.
func (w *Writer) Start(c gnet.Conn, h ws.Header, piece []byte, mask bool) ([4]byte, error) {
	h.Masked = mask
	h.Rsv = 0
	if mask {
		h.Mask = w.Key()
		codec.Mask(piece, h.Mask, 0)
	}
	if c == w.batch {
		if !w.fits(codec.MaxHeaderSize) || len(w.batchIov)+2 > batchMaxIov {
			if err := w.flushKeep(); err != nil {
				return h.Mask, err
			}
		}
		n := len(w.arena)
		w.arena = w.arena[:n+codec.PutHeader(w.arena[n:n+codec.MaxHeaderSize], h)]
		w.gather(w.arena[n:], piece)
		return h.Mask, w.flushIfFull()
	}
	return h.Mask, w.writeNow(c, h, piece)
}

// writeNow writes a frame's header and first piece in one writev, outside
// any batch.
func (w *Writer) writeNow(c gnet.Conn, h ws.Header, piece []byte) error {
	n := codec.PutHeader(w.hdr[:], h)
	w.iov[0], w.iov[1] = w.hdr[:n], piece
	before := c.OutboundBuffered()
	_, err := c.Writev(w.iov[:])
	w.iov[0], w.iov[1] = nil, nil
	w.queued(c, before, err)
	return err
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
	if c == w.batch {
		if len(w.batchIov)+1 > batchMaxIov {
			if err := w.flushKeep(); err != nil {
				return err
			}
		}
		w.gather(piece)
		return w.flushIfFull()
	}
	before := c.OutboundBuffered()
	_, err := c.Write(piece)
	w.queued(c, before, err)
	return err
}

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

// Scratch is a buffer to build a response in before writing it; it is the
// writer's, valid until the next call.
func (w *Writer) Scratch() []byte { return w.scratch[:0] }

func (w *Writer) gather(parts ...[]byte) {
	for _, p := range parts {
		if len(p) > 0 {
			w.batchIov = append(w.batchIov, p)
			w.batchBytes += len(p)
		}
	}
}

func (w *Writer) fits(n int) bool { return len(w.arena)+n <= cap(w.arena) }

// flushKeep writes what was gathered and goes on gathering toward the
// same connection.
func (w *Writer) flushKeep() error {
	c := w.batch
	err := w.Flush()
	if err == nil {
		w.batch = c
	}
	return err
}

func (w *Writer) flushIfFull() error {
	if w.batchBytes >= batchMaxBytes {
		return w.flushKeep()
	}
	return nil
}

func (w *Writer) queued(c gnet.Conn, before int, err error) {
	if err == nil && before == 0 && w.Queued != nil && c.OutboundBuffered() > 0 {
		w.Queued(c)
	}
}
