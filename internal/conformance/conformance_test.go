package conformance

import (
	"bytes"
	"strings"
	"testing"
	"unicode/utf8"
)

// The suite's own helpers, checked against RFC 6455's examples: a broken
// helper would make every case meaningless.

func TestAcceptForRFCExample(t *testing.T) {
	// RFC 6455 section 1.3.
	if got, want := AcceptFor("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="; got != want {
		t.Fatalf("AcceptFor = %q, want %q", got, want)
	}
}

func TestAppendFrameRFCExamples(t *testing.T) {
	// RFC 6455 section 5.7: unmasked and masked "Hello", unmasked ping.
	if got := AppendFrame(nil, OpText, true, 0, false, []byte("Hello")); !bytes.Equal(got, []byte{0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f}) {
		t.Errorf("unmasked Hello: % x", got)
	}
	masked := append(AppendHeader(nil, OpText, true, 0, true, [4]byte{0x37, 0xfa, 0x21, 0x3d}, 5), "Hello"...)
	maskBytes(masked[6:], [4]byte{0x37, 0xfa, 0x21, 0x3d})
	if want := []byte{0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58}; !bytes.Equal(masked, want) {
		t.Errorf("masked Hello: % x, want % x", masked, want)
	}
	if got := AppendFrame(nil, OpPing, true, 0, false, []byte("Hello")); !bytes.Equal(got[:2], []byte{0x89, 0x05}) {
		t.Errorf("ping: % x", got)
	}
	// 256 bytes: 16-bit length; 65536 bytes: 64-bit length.
	if got := AppendHeader(nil, OpBinary, true, 0, false, [4]byte{}, 256); !bytes.Equal(got, []byte{0x82, 0x7e, 0x01, 0x00}) {
		t.Errorf("256-byte header: % x", got)
	}
	if got := AppendHeader(nil, OpBinary, true, 0, false, [4]byte{}, 65536); !bytes.Equal(got, []byte{0x82, 0x7f, 0, 0, 0, 0, 0, 1, 0, 0}) {
		t.Errorf("65536-byte header: % x", got)
	}
	if got := AppendHeader(nil, OpContinuation, false, Rsv1|Rsv3, true, [4]byte{1, 2, 3, 4}, 0); !bytes.Equal(got, []byte{0x50, 0x80, 1, 2, 3, 4}) {
		t.Errorf("rsv header: % x", got)
	}
}

func TestFrameRoundTrip(t *testing.T) {
	for _, n := range []int{0, 1, 125, 126, 65535, 65536} {
		for _, masked := range []bool{false, true} {
			p := BinaryPayload(n)
			f, used, ok := parseFrame(AppendFrame(nil, OpBinary, false, Rsv2, masked, p))
			if !ok || used != headerLen(uint64(n), masked)+n || f.Fin || f.Rsv != Rsv2 || f.Masked != masked || !bytes.Equal(f.Payload, p) {
				t.Errorf("n=%d masked=%v: %v used=%d ok=%v", n, masked, f, used, ok)
			}
		}
	}
}

// headerLen is the header size for a payload of n bytes.
func headerLen(n uint64, masked bool) int {
	return len(AppendHeader(nil, OpBinary, true, 0, masked, [4]byte{}, n))
}

func TestPayloads(t *testing.T) {
	for _, n := range []int{0, 1, 2, 3, 4, 5, 125, 126, 65535, 65536, 1 << 20} {
		p := TextPayload(n)
		if len(p) != n || !utf8.Valid(p) {
			t.Errorf("TextPayload(%d): %d bytes, valid %v", n, len(p), utf8.Valid(p))
		}
		if n >= 100 && utf8.RuneCount(p) == n {
			t.Errorf("TextPayload(%d) is all ASCII", n)
		}
		if len(BinaryPayload(n)) != n {
			t.Errorf("BinaryPayload(%d) has the wrong size", n)
		}
	}
}

func TestRequestEditing(t *testing.T) {
	r := NewRequest("example.com:80", "/chat")
	if !validKeyForTest(r.Key()) {
		t.Fatalf("key %q", r.Key())
	}
	r.Set("connection", "keep-alive, Upgrade").Del("HOST").Add("X-A", "1")
	b := string(r.Bytes())
	if !strings.HasPrefix(b, "GET /chat HTTP/1.1\r\n") || strings.Contains(b, "Host:") ||
		!strings.Contains(b, "\r\nConnection: keep-alive, Upgrade\r\n") || !strings.HasSuffix(b, "X-A: 1\r\n\r\n") {
		t.Fatalf("request:\n%s", b)
	}
	for _, n := range []int{300, 1024, 8192} {
		if got := len(NewRequest("h", "/").PadTo(n).Bytes()); got != n {
			t.Errorf("PadTo(%d): %d bytes", n, got)
		}
	}
}

func validKeyForTest(k string) bool { return len(k) == 24 && strings.HasSuffix(k, "==") }

func TestCheckServerFrame(t *testing.T) {
	bad := []Frame{
		{Fin: true, Opcode: OpText, Masked: true},
		{Fin: true, Opcode: OpText, Rsv: Rsv1},
		{Fin: true, Opcode: 3},
		{Fin: false, Opcode: OpPing},
		{Fin: true, Opcode: OpPong, Payload: make([]byte, 126)},
		{Fin: true, Opcode: OpClose, Payload: []byte{3}},
		{Fin: true, Opcode: OpClose, Payload: ClosePayload(1005, "")},
		{Fin: true, Opcode: OpClose, Payload: ClosePayload(1000, "\xff")},
	}
	for _, f := range bad {
		if CheckServerFrame(f) == nil {
			t.Errorf("%v accepted", f)
		}
	}
	good := []Frame{
		{Fin: true, Opcode: OpText, Payload: []byte("x")},
		{Fin: false, Opcode: OpBinary},
		{Fin: true, Opcode: OpClose},
		{Fin: true, Opcode: OpClose, Payload: ClosePayload(4999, "ok")},
		{Fin: true, Opcode: OpPong, Payload: make([]byte, 125)},
	}
	for _, f := range good {
		if err := CheckServerFrame(f); err != nil {
			t.Errorf("%v refused: %v", f, err)
		}
	}
}
