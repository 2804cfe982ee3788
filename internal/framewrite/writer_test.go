package framewrite

import (
	"bytes"
	"testing"

	"github.com/gobwas/ws"
	"github.com/panjf2000/gnet/v2"

	"github.com/wsgate/wsgate/codec"
)

// sink is the part of a gnet.Conn the writer uses: it keeps the bytes.
type sink struct {
	gnet.Conn
	got bytes.Buffer
}

func (s *sink) Write(p []byte) (int, error) { return s.got.Write(p) }
func (s *sink) Writev(bs [][]byte) (int, error) {
	n := 0
	for _, b := range bs {
		m, _ := s.got.Write(b)
		n += m
	}
	return n, nil
}
func (s *sink) OutboundBuffered() int { return 0 }
func (s *sink) Fd() int               { return 3 }

// frame is an unmasked frame of op with payload.
func frame(op ws.OpCode, payload []byte) []byte {
	var hdr [codec.MaxHeaderSize]byte
	n := codec.PutHeader(hdr[:], ws.Header{Fin: true, OpCode: op, Length: int64(len(payload))})
	return append(hdr[:n:n], payload...)
}

// TestOwnCopiesLargePayloadsInABatch: frames of the gateway's own too
// large for the batch's arena, toward the connection being batched, go
// out as they were given and in order, whatever the caller does with its
// bytes after. (The second one's bytes overwrote the first's, which the
// batch held by reference.)
func TestOwnCopiesLargePayloadsInABatch(t *testing.T) {
	w := New()
	c := &sink{}
	a, b := bytes.Repeat([]byte("a"), 300), bytes.Repeat([]byte("b"), 200) // b fits where a was
	small := []byte("pong")
	w.Batch(c)
	if err := w.Own(c, ws.OpPong, small, false); err != nil {
		t.Fatal(err)
	}
	if err := w.Own(c, ws.OpText, a, false); err != nil {
		t.Fatal(err)
	}
	if err := w.Own(c, ws.OpText, b, false); err != nil {
		t.Fatal(err)
	}
	a[0], b[0] = 'x', 'x' // the caller's bytes are its own again
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	want := append(append(frame(ws.OpPong, small), frame(ws.OpText, bytes.Repeat([]byte("a"), 300))...), frame(ws.OpText, bytes.Repeat([]byte("b"), 200))...)
	if !bytes.Equal(c.got.Bytes(), want) {
		t.Fatalf("wrote % x...\nwant  % x...", c.got.Bytes()[:min(40, c.got.Len())], want[:40])
	}
}

// TestForgetWritesAnotherConnsBatch: when a connection closes while a
// batch toward another one is open, that batch goes out at once (its
// pieces may point into the closing connection's buffer, which gnet
// reuses after OnClose); a batch toward the closing one is dropped.
func TestForgetWritesAnotherConnsBatch(t *testing.T) {
	w := New()
	to, from := &sink{}, &fdSink{fd: 4}
	in := []byte("relayed piece") // stands for from's inbound buffer
	w.Batch(to)
	if err := w.Frame(to, ws.Header{Fin: true, OpCode: ws.OpText}, in, false); err != nil {
		t.Fatal(err)
	}
	w.Forget(from)
	copy(in, "REUSED BUFFER") // gnet gives the buffer to someone else
	_ = w.Flush()
	if want := frame(ws.OpText, []byte("relayed piece")); !bytes.Equal(to.got.Bytes(), want) {
		t.Fatalf("wrote %q, want %q", to.got.Bytes(), want)
	}
	w.Batch(to)
	_ = w.Frame(to, ws.Header{Fin: true, OpCode: ws.OpText}, []byte("dropped"), false)
	w.Forget(to)
	_ = w.Flush()
	if bytes.Contains(to.got.Bytes(), []byte("dropped")) {
		t.Fatal("a batch toward the closed connection was written")
	}
}

type fdSink struct {
	sink
	fd int
}

func (s *fdSink) Fd() int { return s.fd }
