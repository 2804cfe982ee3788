package codec

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"math/rand"
	"testing"

	"github.com/gobwas/ws"
)

// asProtocolError extracts the *ProtocolError of err or fails the test.
func asProtocolError(t *testing.T, err error) *ProtocolError {
	t.Helper()
	var pe *ProtocolError
	if !errors.As(err, &pe) {
		t.Fatalf(
			"error %v (%T) is not a *ProtocolError",
			err, err,
		)
	}
	return pe
}

func TestHeaderRoundTrip(t *testing.T) {
	lengths := []struct {
		length int64
		size   int // encoded size without mask
	}{
		{0, 2},
		{1, 2},
		{125, 2},
		{126, 4},
		{127, 4},
		{65535, 4},
		{65536, 10},
		{1 << 20, 10},
		{1 << 32, 10},
		{1<<63 - 1, 10},
	}
	for _, l := range lengths {
		for _, masked := range []bool{false, true} {
			for _, op := range []ws.OpCode{ws.OpText, ws.OpBinary, ws.OpContinuation} {
				for _, fin := range []bool{true, false} {
					h := ws.Header{Fin: fin, OpCode: op, Length: l.length, Masked: masked}
					role := RoleClient
					want := l.size
					if masked {
						h.Mask = [4]byte{0x37, 0xfa, 0x21, byte(l.length)}
						role = RoleServer
						want += 4
					}
					name := fmt.Sprintf("%v/len=%d/masked=%v/fin=%v", op, l.length, masked, fin)
					var buf [MaxHeaderSize]byte
					n := PutHeader(buf[:], h)
					if n != want || n != HeaderSize(h) {
						t.Fatalf(
							"%s: PutHeader wrote %d bytes, HeaderSize %d, want %d",
							name, n, HeaderSize(h), want,
						)
					}
					// gobwas/ws encodes the same bytes.
					var ref bytes.Buffer
					if err := ws.WriteHeader(&ref, h); err != nil || !bytes.Equal(ref.Bytes(), buf[:n]) {
						t.Fatalf(
							"%s: PutHeader %x, ws.WriteHeader %x (%v)",
							name, buf[:n], ref.Bytes(), err,
						)
					}
					got, m, err := ParseHeader(buf[:n], role, 0)
					if err != nil || m != n || got != h {
						t.Fatalf(
							"%s: ParseHeader = %+v, %d, %v; want %+v, %d",
							name, got, m, err, h, n,
						)
					}
					// A limit of exactly the length lets it through.
					if _, _, err := ParseHeader(buf[:n], role, max(l.length, 1)); err != nil {
						t.Fatalf(
							"%s: ParseHeader with maxPayload=length: %v",
							name, err,
						)
					}
				}
			}
		}
	}
	// Control frames, up to 125 bytes.
	for _, op := range []ws.OpCode{ws.OpClose, ws.OpPing, ws.OpPong} {
		for _, length := range []int64{0, 2, 125} {
			h := ws.Header{Fin: true, OpCode: op, Length: length, Masked: true, Mask: [4]byte{1, 2, 3, 4}}
			var buf [MaxHeaderSize]byte
			n := PutHeader(buf[:], h)
			got, m, err := ParseHeader(buf[:n], RoleServer, 16)
			if err != nil || m != n || got != h {
				t.Fatalf(
					"%v len %d: ParseHeader = %+v, %d, %v",
					op, length, got, m, err,
				)
			}
		}
	}
}

// TestParseHeaderRFCExamples parses the frames of RFC 6455 section 5.7.
func TestParseHeaderRFCExamples(t *testing.T) {
	len64k := []byte{0x82, 0x7f, 0, 0, 0, 0, 0, 1, 0, 0}
	tests := []struct {
		name    string
		frame   []byte
		role    Role
		want    ws.Header
		payload string // unmasked payload, "" to skip
	}{
		{
			name:    "single-frame unmasked text",
			frame:   []byte{0x81, 0x05, 'H', 'e', 'l', 'l', 'o'},
			role:    RoleClient,
			want:    ws.Header{Fin: true, OpCode: ws.OpText, Length: 5},
			payload: "Hello",
		},
		{
			name:    "single-frame masked text",
			frame:   maskedHello,
			role:    RoleServer,
			want:    ws.Header{Fin: true, OpCode: ws.OpText, Length: 5, Masked: true, Mask: [4]byte{0x37, 0xfa, 0x21, 0x3d}},
			payload: "Hello",
		},
		{
			name:    "fragmented text, first",
			frame:   []byte{0x01, 0x03, 'H', 'e', 'l'},
			role:    RoleClient,
			want:    ws.Header{OpCode: ws.OpText, Length: 3},
			payload: "Hel",
		},
		{
			name:    "fragmented text, last",
			frame:   []byte{0x80, 0x02, 'l', 'o'},
			role:    RoleClient,
			want:    ws.Header{Fin: true, OpCode: ws.OpContinuation, Length: 2},
			payload: "lo",
		},
		{
			name:    "unmasked ping",
			frame:   []byte{0x89, 0x05, 'H', 'e', 'l', 'l', 'o'},
			role:    RoleClient,
			want:    ws.Header{Fin: true, OpCode: ws.OpPing, Length: 5},
			payload: "Hello",
		},
		{
			name:    "masked pong",
			frame:   []byte{0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58},
			role:    RoleServer,
			want:    ws.Header{Fin: true, OpCode: ws.OpPong, Length: 5, Masked: true, Mask: [4]byte{0x37, 0xfa, 0x21, 0x3d}},
			payload: "Hello",
		},
		{
			name:  "256 bytes binary",
			frame: []byte{0x82, 0x7e, 0x01, 0x00},
			role:  RoleClient,
			want:  ws.Header{Fin: true, OpCode: ws.OpBinary, Length: 256},
		},
		{
			name:  "64 KiB binary",
			frame: len64k,
			role:  RoleClient,
			want:  ws.Header{Fin: true, OpCode: ws.OpBinary, Length: 65536},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, n, err := ParseHeader(tt.frame, tt.role, 1<<20)
			if err != nil || h != tt.want {
				t.Fatalf(
					"ParseHeader = %+v, %d, %v; want %+v",
					h, n, err, tt.want,
				)
			}
			if n+int(h.Length) != len(tt.frame) && tt.payload != "" {
				t.Fatalf(
					"header %d + payload %d != frame %d",
					n, h.Length, len(tt.frame),
				)
			}
			if tt.payload != "" {
				p := bytes.Clone(tt.frame[n:])
				if h.Masked {
					Mask(p, h.Mask, 0)
				}
				if string(p) != tt.payload {
					t.Fatalf(
						"payload %q, want %q",
						p, tt.payload,
					)
				}
			}
			var buf [MaxHeaderSize]byte
			if m := PutHeader(buf[:], h); !bytes.Equal(buf[:m], tt.frame[:n]) {
				t.Fatalf(
					"PutHeader = %x, want %x",
					buf[:m], tt.frame[:n],
				)
			}
		})
	}
}

func TestParseHeaderProtocolErrors(t *testing.T) {
	mask := []byte{1, 2, 3, 4}
	m := func(b ...byte) []byte { return append(b, mask...) } // masked header
	type tc struct {
		name       string
		frame      []byte
		role       Role
		maxPayload int64
		code       ws.StatusCode
	}
	var tests []tc
	for op := byte(0x3); op <= 0xf; op++ {
		if op >= 0x8 && op <= 0xa {
			continue
		}
		tests = append(tests,
			tc{
				name:  fmt.Sprintf("reserved opcode %#x from client", op),
				frame: m(0x80|op, 0x80),
				role:  RoleServer,
				code:  CloseProtocolError,
			},
			tc{
				name:  fmt.Sprintf("reserved opcode %#x from server", op),
				frame: []byte{0x80 | op, 0x00},
				role:  RoleClient,
				code:  CloseProtocolError,
			},
		)
	}
	for _, rsv := range []byte{0x40, 0x20, 0x10, 0x70} {
		tests = append(tests,
			tc{
				name:  fmt.Sprintf("RSV %#x on text", rsv),
				frame: m(0x81|rsv, 0x85),
				role:  RoleServer,
				code:  CloseProtocolError,
			},
			tc{
				name:  fmt.Sprintf("RSV %#x on ping", rsv),
				frame: []byte{0x89 | rsv, 0x00},
				role:  RoleClient,
				code:  CloseProtocolError,
			},
		)
	}
	tests = append(tests, []tc{
		{
			name:  "ping of 126 bytes",
			frame: m(0x89, 0xfe, 0x00, 0x7e),
			role:  RoleServer,
			code:  CloseProtocolError,
		},
		{
			name:  "close of 126 bytes",
			frame: []byte{0x88, 0x7e, 0x00, 0x7e},
			role:  RoleClient,
			code:  CloseProtocolError,
		},
		{
			name:  "pong with a 64-bit length",
			frame: m(0x8a, 0xff, 0, 0, 0, 0, 0, 1, 0, 0),
			role:  RoleServer,
			code:  CloseProtocolError,
		},
		{
			name:  "fragmented ping",
			frame: m(0x09, 0x80),
			role:  RoleServer,
			code:  CloseProtocolError,
		},
		{
			name:  "fragmented close",
			frame: []byte{0x08, 0x02},
			role:  RoleClient,
			code:  CloseProtocolError,
		},
		{
			name:  "fragmented pong",
			frame: m(0x0a, 0x80),
			role:  RoleServer,
			code:  CloseProtocolError,
		},
		{
			name:  "unmasked text to a server",
			frame: []byte{0x81, 0x05},
			role:  RoleServer,
			code:  CloseProtocolError,
		},
		{
			name:  "unmasked close to a server",
			frame: []byte{0x88, 0x00},
			role:  RoleServer,
			code:  CloseProtocolError,
		},
		{
			name:  "masked text to a client",
			frame: m(0x81, 0x85),
			role:  RoleClient,
			code:  CloseProtocolError,
		},
		{
			name:  "masked ping to a client",
			frame: m(0x89, 0x80),
			role:  RoleClient,
			code:  CloseProtocolError,
		},
		{
			name:  "64-bit length with the top bit",
			frame: m(0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 0),
			role:  RoleServer,
			code:  CloseProtocolError,
		},
		{
			name:  "64-bit length all ones",
			frame: []byte{0x82, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
			role:  RoleClient,
			code:  CloseProtocolError,
		},
		{
			name:       "text over maxPayload, 7-bit length",
			frame:      m(0x81, 0x80|11),
			role:       RoleServer,
			maxPayload: 10,
			code:       CloseMessageTooBig,
		},
		{
			name:       "binary over maxPayload, 16-bit length",
			frame:      m(0x82, 0xfe, 0x04, 0x01),
			role:       RoleServer,
			maxPayload: 1024,
			code:       CloseMessageTooBig,
		},
		{
			name:       "binary over maxPayload, 64-bit length",
			frame:      m(0x82, 0xff, 0, 0, 0, 1, 0, 0, 0, 0),
			role:       RoleServer,
			maxPayload: 1 << 20,
			code:       CloseMessageTooBig,
		},
		{
			name:       "largest length over maxPayload",
			frame:      []byte{0x82, 0x7f, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
			role:       RoleClient,
			maxPayload: 1 << 20,
			code:       CloseMessageTooBig,
		},
		{
			name:       "continuation over maxPayload",
			frame:      m(0x80, 0xff, 0, 0, 0, 0, 0, 0x10, 0, 1),
			role:       RoleServer,
			maxPayload: 1 << 20,
			code:       CloseMessageTooBig,
		},
	}...)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// The header alone is enough to refuse: no payload follows.
			h, n, err := ParseHeader(tt.frame, tt.role, tt.maxPayload)
			if err == nil || errors.Is(err, ErrNeedMore) {
				t.Fatalf(
					"ParseHeader(%x) = %+v, %d, %v; want close %d",
					tt.frame, h, n, err, tt.code,
				)
			}
			pe := asProtocolError(t, err)
			if pe.Code != tt.code {
				t.Fatalf(
					"code %d (%s), want %d",
					pe.Code, pe.Reason, tt.code,
				)
			}
			if n != 0 {
				t.Fatalf(
					"consumed %d bytes on error",
					n,
				)
			}
			if pe.Reason == "" || len(pe.Reason) > MaxCloseReason || !ValidUTF8([]byte(pe.Reason)) {
				t.Fatalf(
					"reason %q does not fit a close frame",
					pe.Reason,
				)
			}
		})
	}
}

// TestParseHeaderControlIgnoresMaxPayload: control frames are bounded by
// 125 bytes, not by the data limit.
func TestParseHeaderControlIgnoresMaxPayload(t *testing.T) {
	frame := []byte{0x89, 0x80 | 125, 1, 2, 3, 4}
	if _, n, err := ParseHeader(frame, RoleServer, 16); err != nil || n != 6 {
		t.Fatalf(
			"ping of 125 with maxPayload 16: %d, %v",
			n, err,
		)
	}
}

func TestMessageState(t *testing.T) {
	text := func(fin bool, n int64) ws.Header { return ws.Header{Fin: fin, OpCode: ws.OpText, Length: n} }
	binary := func(fin bool, n int64) ws.Header { return ws.Header{Fin: fin, OpCode: ws.OpBinary, Length: n} }
	cont := func(fin bool, n int64) ws.Header { return ws.Header{Fin: fin, OpCode: ws.OpContinuation, Length: n} }
	ping := ws.Header{Fin: true, OpCode: ws.OpPing, Length: 4}
	pong := ws.Header{Fin: true, OpCode: ws.OpPong, Length: 125}
	closeFrame := ws.Header{Fin: true, OpCode: ws.OpClose, Length: 2}

	type step struct {
		h    ws.Header
		code ws.StatusCode // 0: accepted
		open bool
		op   ws.OpCode
		size int64
	}
	tests := []struct {
		name  string
		max   int64
		steps []step
	}{
		{
			name: "single text frame",
			steps: []step{
				{h: text(true, 5), open: false, op: ws.OpText, size: 5},
			},
		},
		{
			name: "continuation without start",
			steps: []step{
				{h: cont(true, 2), code: CloseProtocolError},
			},
		},
		{
			name: "continuation after a finished message",
			steps: []step{
				{h: binary(true, 3), op: ws.OpBinary, size: 3},
				{h: cont(false, 2), code: CloseProtocolError, op: ws.OpBinary, size: 3},
			},
		},
		{
			name: "fragmented text with control frames inside",
			steps: []step{
				{h: text(false, 3), open: true, op: ws.OpText, size: 3},
				{h: ping, open: true, op: ws.OpText, size: 3},
				{h: cont(false, 0), open: true, op: ws.OpText, size: 3},
				{h: pong, open: true, op: ws.OpText, size: 3},
				{h: cont(false, 2), open: true, op: ws.OpText, size: 5},
				{h: closeFrame, open: true, op: ws.OpText, size: 5},
				{h: cont(true, 4), open: false, op: ws.OpText, size: 9},
			},
		},
		{
			name: "new text inside a fragmented message",
			steps: []step{
				{h: text(false, 3), open: true, op: ws.OpText, size: 3},
				{h: text(true, 2), code: CloseProtocolError, open: true, op: ws.OpText, size: 3},
				{h: binary(false, 2), code: CloseProtocolError, open: true, op: ws.OpText, size: 3},
				{h: cont(true, 2), open: false, op: ws.OpText, size: 5},
			},
		},
		{
			name: "new binary inside a fragmented binary",
			steps: []step{
				{h: binary(false, 1), open: true, op: ws.OpBinary, size: 1},
				{h: binary(false, 1), code: CloseProtocolError, open: true, op: ws.OpBinary, size: 1},
			},
		},
		{
			name: "single frame over the limit",
			max:  10,
			steps: []step{
				{h: text(true, 11), code: CloseMessageTooBig},
				{h: text(true, 10), op: ws.OpText, size: 10},
			},
		},
		{
			name: "cumulative size over the limit",
			max:  10,
			steps: []step{
				{h: text(false, 6), open: true, op: ws.OpText, size: 6},
				{h: cont(false, 4), open: true, op: ws.OpText, size: 10},
				{h: cont(false, 0), open: true, op: ws.OpText, size: 10},
				{h: cont(true, 1), code: CloseMessageTooBig, open: true, op: ws.OpText, size: 10},
			},
		},
		{
			name: "limit is per message",
			max:  10,
			steps: []step{
				{h: binary(true, 8), op: ws.OpBinary, size: 8},
				{h: text(false, 8), open: true, op: ws.OpText, size: 8},
				{h: cont(true, 2), op: ws.OpText, size: 10},
				{h: binary(true, 10), op: ws.OpBinary, size: 10},
			},
		},
		{
			name: "no limit",
			max:  0,
			steps: []step{
				{h: binary(false, 1<<40), open: true, op: ws.OpBinary, size: 1 << 40},
				{h: cont(true, 1<<40), op: ws.OpBinary, size: 1 << 41},
			},
		},
		{
			name: "control frames alone",
			max:  1,
			steps: []step{
				{h: ping},
				{h: pong},
				{h: closeFrame},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var m MessageState
			for i, s := range tt.steps {
				err := m.Next(s.h, tt.max)
				if s.code == 0 && err != nil {
					t.Fatalf(
						"step %d %+v: %v",
						i, s.h, err,
					)
				}
				if s.code != 0 {
					if pe := asProtocolError(t, err); pe.Code != s.code {
						t.Fatalf(
							"step %d %+v: code %d, want %d",
							i, s.h, pe.Code, s.code,
						)
					}
				}
				if m.Open() != s.open || m.OpCode() != s.op || m.Size() != s.size {
					t.Fatalf(
						"step %d %+v: open %v op %v size %d, want %v %v %d",
						i, s.h, m.Open(), m.OpCode(), m.Size(), s.open, s.op, s.size,
					)
				}
			}
		})
	}
}

// maskRef is the RFC 6455 section 5.3 formula, byte by byte.
func maskRef(p []byte, mask [4]byte, offset int) {
	for i := range p {
		p[i] ^= mask[(offset+i)%4]
	}
}

func TestMask(t *testing.T) {
	// RFC 6455 section 5.7: "Hello" with mask 37 fa 21 3d.
	p := []byte("Hello")
	Mask(p, [4]byte{0x37, 0xfa, 0x21, 0x3d}, 0)
	if want := maskedHello[6:]; !bytes.Equal(p, want) {
		t.Fatalf(
			"Mask(Hello) = %x, want %x",
			p, want,
		)
	}

	rng := rand.New(rand.NewSource(53))
	sizes := []int{0, 1, 3, 4, 5, 7, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100, 1024, 1027, 4099}
	for iter := 0; iter < 600; iter++ {
		n := sizes[iter%len(sizes)]
		if iter >= 3*len(sizes) {
			n = rng.Intn(300)
		}
		var mask [4]byte
		rng.Read(mask[:])
		orig := make([]byte, n)
		rng.Read(orig)
		want := bytes.Clone(orig)
		maskRef(want, mask, 0)

		// Mask in pieces, each continuing at its offset in the payload.
		cuts := randomCuts(rng, n, 6)
		got := bytes.Clone(orig)
		off := 0
		for _, piece := range pieces(got, cuts) {
			Mask(piece, mask, off)
			off += len(piece)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf(
				"size %d mask %x cuts %v: pieces differ from the whole",
				n, mask, cuts,
			)
		}
		// Unmasking is the same operation, with other cuts.
		cuts = randomCuts(rng, n, 6)
		off = 0
		for _, piece := range pieces(got, cuts) {
			Mask(piece, mask, off)
			off += len(piece)
		}
		if !bytes.Equal(got, orig) {
			t.Fatalf(
				"size %d mask %x cuts %v: no round trip",
				n, mask, cuts,
			)
		}
	}

	// Offsets past the mask length wrap around.
	mask := [4]byte{1, 2, 4, 8}
	for _, off := range []int{0, 1, 2, 3, 4, 5, 1027, 1 << 20} {
		for _, n := range []int{1, 7, 16, 33, 1024} {
			got := make([]byte, n)
			want := make([]byte, n)
			Mask(got, mask, off)
			maskRef(want, mask, off)
			if !bytes.Equal(got, want) {
				t.Fatalf(
					"offset %d size %d: %x, want %x",
					off, n, got, want,
				)
			}
		}
	}
}

func TestProtocolErrorText(t *testing.T) {
	err := error(&ProtocolError{Code: CloseMessageTooBig, Reason: "message too big"})
	if err.Error() != "codec: close 1009: message too big" {
		t.Fatalf(
			"Error() = %q",
			err.Error(),
		)
	}
}

func TestSplitFrame(t *testing.T) {
	frame := []byte{0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58} // RFC 6455 5.7 masked "Hello"
	for cut := 0; cut < len(frame); cut++ {
		_, _, total, err := SplitFrame(frame[:cut], RoleServer, 0)
		if err != ErrNeedMore || total <= cut || total > len(frame) {
			t.Fatalf("cut %d: total %d err %v; want ErrNeedMore and a need past the cut", cut, total, err)
		}
	}
	h, hn, total, err := SplitFrame(append(frame, 0x81), RoleServer, 0)
	if err != nil || hn != 6 || total != len(frame) || h.Length != 5 {
		t.Fatalf("whole frame: %+v %d %d %v", h, hn, total, err)
	}
}

// Regression (hardening issue, defect 1): a backend frame declaring a
// payload of 2^63-1 bytes overflowed header+length and panicked the event
// loop when no limit was set. Every role and limit now refuses it with 1009.
func TestSplitFrameHugeLength(t *testing.T) {
	for _, tc := range []struct {
		name  string
		frame []byte
		role  Role
	}{
		{"server frame to client role", []byte{0x82, 0x7f, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, RoleClient},
		{"client frame to server role", []byte{0x82, 0xff, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1, 2, 3, 4}, RoleServer},
		{"length just past MaxInt minus header", []byte{0x82, 0x7f, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xf7}, RoleClient},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, limit := range []int64{0, -1, 1 << 20, math.MaxInt64} {
				_, _, total, err := SplitFrame(tc.frame, tc.role, limit)
				var pe *ProtocolError
				if !errors.As(err, &pe) || pe.Code != CloseMessageTooBig || total != 0 {
					t.Fatalf("limit %d: total %d, err %v; want 1009", limit, total, err)
				}
			}
		})
	}
	// The largest length that can be buffered still parses.
	frame := []byte{0x82, 0x7f, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xf5}
	if _, hn, total, err := SplitFrame(frame, RoleClient, 0); err != ErrNeedMore || total != math.MaxInt || hn != 10 {
		t.Fatalf("MaxInt-10: total %d hn %d err %v", total, hn, err)
	}
}
