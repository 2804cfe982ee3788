package codec

import (
	"bytes"
	"errors"
	"math/rand"
	"testing"

	"github.com/gobwas/ws"
)

// readAll runs a FrameReader over stream delivered in the given pieces,
// the way a connection's inbound buffer grows: each call sees what has
// arrived and not been consumed. It returns every frame reassembled from
// its pieces and the first error.
func readAll(t testing.TB, r *FrameReader, chunks [][]byte) (frames []readFrame, err error) {
	t.Helper()
	var buf []byte
	var cur *readFrame
	for _, c := range chunks {
		buf = append(buf, c...)
		for {
			pc, n, err := r.Next(buf)
			if err != nil {
				return frames, err
			}
			if n == 0 {
				if r.Need() <= len(buf) {
					t.Fatalf("Next made no progress on %d bytes but needs only %d", len(buf), r.Need())
				}
				break
			}
			buf = buf[n:]
			if pc.First {
				frames = append(frames, readFrame{h: pc.Header})
				cur = &frames[len(frames)-1]
			} else if cur == nil || pc.Header != cur.h {
				t.Fatalf("a continuing piece of %+v without its first", pc.Header)
			}
			if pc.Offset != int64(len(cur.payload)) {
				t.Fatalf("piece offset %d after %d bytes", pc.Offset, len(cur.payload))
			}
			cur.payload = append(cur.payload, pc.Payload...)
			if pc.Last {
				cur.done = true
				if int64(len(cur.payload)) != cur.h.Length {
					t.Fatalf("frame of %d bytes ended after %d", cur.h.Length, len(cur.payload))
				}
			} else if len(pc.Payload) == 0 {
				t.Fatal("an empty piece in the middle of a frame")
			}
		}
	}
	return frames, nil
}

type readFrame struct {
	h       ws.Header
	payload []byte
	done    bool
}

// frameStream builds a client-to-server stream of the RFC examples, a
// fragmented text message with interleaved control frames, and big frames.
func frameStream(rng *rand.Rand) (stream []byte, want []readFrame) {
	add := func(h ws.Header, payload []byte) {
		h.Length = int64(len(payload))
		h.Masked = true
		rng.Read(h.Mask[:])
		want = append(want, readFrame{h: h, payload: payload, done: true})
		var hb [MaxHeaderSize]byte
		stream = append(stream, hb[:PutHeader(hb[:], h)]...)
		masked := bytes.Clone(payload)
		Mask(masked, h.Mask, 0)
		stream = append(stream, masked...)
	}
	add(ws.Header{Fin: true, OpCode: ws.OpText}, []byte("Hello"))
	add(ws.Header{OpCode: ws.OpText}, []byte("κό"))
	add(ws.Header{Fin: true, OpCode: ws.OpPing}, []byte("ping"))
	add(ws.Header{OpCode: ws.OpContinuation}, []byte("\xcf")) // a code point cut across frames
	add(ws.Header{Fin: true, OpCode: ws.OpContinuation}, []byte("\x83με"))
	big := make([]byte, 70000)
	rng.Read(big)
	add(ws.Header{Fin: true, OpCode: ws.OpBinary}, big)
	add(ws.Header{Fin: true, OpCode: ws.OpText}, bytes.Repeat([]byte("€"), 30000))
	add(ws.Header{Fin: true, OpCode: ws.OpBinary}, nil)
	add(ws.Header{Fin: true, OpCode: ws.OpClose}, []byte{0x03, 0xe8, 'o', 'k'})
	return stream, want
}

// TestFrameReaderSplitInput: whatever the cuts (one byte at a time,
// random), the frames read are the frames sent, every payload byte handed
// out once and in order, and no empty piece mid-frame.
func TestFrameReaderSplitInput(t *testing.T) {
	rng := rand.New(rand.NewSource(3))
	stream, want := frameStream(rng)
	check := func(name string, chunks [][]byte) {
		r := NewFrameReader(RoleServer, 1<<20, 1<<20)
		got, err := readAll(t, &r, chunks)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(got) != len(want) {
			t.Fatalf("%s: %d frames, want %d", name, len(got), len(want))
		}
		for i := range want {
			if got[i].h != want[i].h || !bytes.Equal(got[i].payload, want[i].payload) || !got[i].done {
				t.Fatalf("%s: frame %d: %+v (%d bytes, done %v), want %+v", name, i, got[i].h, len(got[i].payload), got[i].done, want[i].h)
			}
		}
		if r.InMessage() {
			t.Fatalf("%s: still in a message at the end", name)
		}
	}
	check("whole", [][]byte{stream})
	var bytewise [][]byte
	for i := range stream[:2000] {
		bytewise = append(bytewise, stream[i:i+1])
	}
	check("byte by byte", append(bytewise, stream[2000:]))
	for iter := 0; iter < 200; iter++ {
		check("random cuts", pieces(stream, randomCuts(rng, len(stream), 300)))
	}
}

// TestFrameReaderLimitsFromTheHeader: a frame over the frame limit, or a
// continuation that takes the message over the message limit, is refused
// from its header alone, before any of its payload is taken.
func TestFrameReaderLimitsFromTheHeader(t *testing.T) {
	hdr := func(h ws.Header) []byte {
		var b [MaxHeaderSize]byte
		return append([]byte(nil), b[:PutHeader(b[:], h)]...)
	}
	r := NewFrameReader(RoleClient, 1000, 1500)
	// Frame limit: 8 GiB declared, nothing of it sent.
	_, _, err := r.Next(hdr(ws.Header{Fin: true, OpCode: ws.OpBinary, Length: 8 << 30}))
	var pe *ProtocolError
	if !errors.As(err, &pe) || pe.Code != CloseMessageTooBig {
		t.Fatalf("8 GiB frame: %v", err)
	}
	// Message limit: 1000 + 600 over 1500, refused at the second header.
	r = NewFrameReader(RoleClient, 1000, 1500)
	first := append(hdr(ws.Header{OpCode: ws.OpBinary, Length: 1000}), make([]byte, 1000)...)
	if _, n, err := r.Next(first); err != nil || n != len(first) {
		t.Fatalf("first fragment: %d, %v", n, err)
	}
	_, _, err = r.Next(append(hdr(ws.Header{Fin: true, OpCode: ws.OpContinuation, Length: 600}), 'x'))
	if !errors.As(err, &pe) || pe.Code != CloseMessageTooBig {
		t.Fatalf("continuation past the message limit: %v", err)
	}
	// The largest lengths never overflow.
	r = NewFrameReader(RoleClient, 0, 0)
	_, _, err = r.Next([]byte{0x82, 0x7f, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0})
	if !errors.As(err, &pe) || pe.Code != CloseMessageTooBig {
		t.Fatalf("2^63-1 without limits: %v", err)
	}
}

// TestFrameReaderFailsFastOnBadText: invalid UTF-8 in the middle of a text
// frame fails the piece that holds it, before the frame has arrived whole.
func TestFrameReaderFailsFastOnBadText(t *testing.T) {
	var b [MaxHeaderSize]byte
	h := ws.Header{Fin: true, OpCode: ws.OpText, Length: 1 << 20}
	stream := append([]byte(nil), b[:PutHeader(b[:], h)]...)
	stream = append(stream, bytes.Repeat([]byte("ok"), 100)...)
	r := NewFrameReader(RoleClient, 1<<20, 1<<20)
	if _, _, err := r.Next(stream); err != nil {
		t.Fatalf("valid start: %v", err)
	}
	_, _, err := r.Next([]byte("still ok \xed\xa0\x80 a surrogate"))
	var pe *ProtocolError
	if !errors.As(err, &pe) || pe.Code != CloseInvalidPayload {
		t.Fatalf("bad text mid-frame: %v, want 1007 at once", err)
	}
	// A code point cut at the end of a message is invalid too.
	r = NewFrameReader(RoleClient, 0, 0)
	_, _, err = r.Next([]byte{0x81, 0x01, 0xc3})
	if !errors.As(err, &pe) || pe.Code != CloseInvalidPayload {
		t.Fatalf("message ending mid code point: %v", err)
	}
}

// TestFrameReaderZeroAllocs: reading does not allocate.
func TestFrameReaderZeroAllocs(t *testing.T) {
	stream, _ := frameStream(rand.New(rand.NewSource(1)))
	work := make([]byte, len(stream))
	allocs := testing.AllocsPerRun(50, func() {
		copy(work, stream)
		r := NewFrameReader(RoleServer, 0, 0)
		for p := work; len(p) > 0; {
			_, n, err := r.Next(p)
			if err != nil || n == 0 {
				t.Fatal("stream did not parse")
			}
			p = p[n:]
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per stream", allocs)
	}
}

// FuzzFrameReader: any bytes in any pieces, either role: no panic, and
// the frames and the error are the same as when the bytes arrive at once.
func FuzzFrameReader(f *testing.F) {
	stream, _ := frameStream(rand.New(rand.NewSource(2)))
	f.Add(stream[:300], false, int64(0), uint64(7))
	for _, frame := range rfcFrames {
		f.Add(frame, frame[1]&0x80 == 0, int64(4), uint64(1))
	}
	f.Add([]byte{0x82, 0x7f, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, true, int64(0), uint64(3))
	f.Fuzz(func(t *testing.T, data []byte, client bool, limit int64, seed uint64) {
		role := RoleServer
		if client {
			role = RoleClient
		}
		whole := NewFrameReader(role, limit, limit)
		want, wantErr := readAll(t, &whole, [][]byte{bytes.Clone(data)})
		rng := rand.New(rand.NewSource(int64(seed)))
		split := NewFrameReader(role, limit, limit)
		got, gotErr := readAll(t, &split, pieces(bytes.Clone(data), randomCuts(rng, len(data), 20)))
		var we, ge *ProtocolError
		errors.As(wantErr, &we)
		errors.As(gotErr, &ge)
		if (we == nil) != (ge == nil) || (we != nil && we.Code != ge.Code) {
			t.Fatalf("%x: whole %v, split %v", data, wantErr, gotErr)
		}
		if wantErr != nil {
			return // where an error stops depends on the cuts (fail fast)
		}
		if len(got) != len(want) {
			t.Fatalf("%x: %d frames split, %d whole", data, len(got), len(want))
		}
		for i := range want {
			if got[i].h != want[i].h || !bytes.Equal(got[i].payload, want[i].payload) {
				t.Fatalf("%x: frame %d differs", data, i)
			}
		}
	})
}
