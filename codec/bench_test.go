package codec

import (
	"bytes"
	"strings"
	"testing"

	"github.com/gobwas/ws"
)

var (
	// A small masked text frame header, as every client frame has.
	benchSmallMasked = []byte{0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d}
	// A binary frame header with a 64-bit length, masked.
	benchLen64 = []byte{0x82, 0xff, 0, 0, 0, 0, 0, 0x10, 0, 0, 1, 2, 3, 4}

	benchASCII = []byte(strings.Repeat("The quick brown fox jumps over the lazy dog. ", 1024/45+1)[:1024])
	benchMixed = []byte(strings.Repeat("ascii κόσμε 日本語 😀 ", 1024/40+1))
)

// TestZeroAllocs pins the promise that the per-frame path does not allocate.
func TestZeroAllocs(t *testing.T) {
	var (
		h   ws.Header
		n   int
		err error
		ok  bool
		buf [MaxHeaderSize]byte
		acc [28]byte
	)
	hdr := ws.Header{Fin: true, OpCode: ws.OpBinary, Length: 1 << 20, Masked: true, Mask: [4]byte{1, 2, 3, 4}}
	payload := make([]byte, 1024)
	tests := []struct {
		name string
		fn   func()
	}{
		{
			name: "ParseHeader small masked",
			fn:   func() { h, n, err = ParseHeader(benchSmallMasked, RoleServer, 1<<20) },
		},
		{
			name: "ParseHeader 64-bit length",
			fn:   func() { h, n, err = ParseHeader(benchLen64, RoleServer, 1<<21) },
		},
		{
			name: "ParseHeader need more",
			fn:   func() { h, n, err = ParseHeader(benchLen64[:5], RoleServer, 0) },
		},
		{
			name: "PutHeader",
			fn:   func() { n = PutHeader(buf[:], hdr) },
		},
		{
			name: "UTF8Validator.Write ASCII",
			fn: func() {
				var v UTF8Validator
				ok = v.Write(benchASCII) && v.Complete()
			},
		},
		{
			name: "UTF8Validator.Write mixed",
			fn: func() {
				var v UTF8Validator
				ok = v.Write(benchMixed[:7]) && v.Write(benchMixed[7:]) && v.Complete()
			},
		},
		{
			name: "AcceptKey",
			fn:   func() { n = len(AcceptKey(&acc, rfcKey)) },
		},
		{
			name: "Mask",
			fn:   func() { Mask(payload, hdr.Mask, 3) },
		},
		{
			name: "ParseClosePayload",
			fn:   func() { _, _, err = ParseClosePayload([]byte{0x03, 0xe8, 'o', 'k'}) },
		},
		{
			name: "PutClosePayload",
			fn:   func() { n = PutClosePayload(buf[:], CloseGoingAway, "bye") },
		},
		{
			name: "MessageState.Next",
			fn: func() {
				var m MessageState
				err = m.Next(hdr, 1<<21)
			},
		},
	}
	for _, tt := range tests {
		if a := testing.AllocsPerRun(100, tt.fn); a != 0 {
			t.Errorf(
				"%s: %v allocs per run, want 0",
				tt.name, a,
			)
		}
	}
	_, _, _, _ = h, n, err, ok
}

func BenchmarkParseHeader(b *testing.B) {
	for _, bb := range []struct {
		name  string
		frame []byte
	}{
		{name: "small-masked", frame: benchSmallMasked},
		{name: "len64-masked", frame: benchLen64},
	} {
		b.Run(bb.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(bb.frame)))
			for b.Loop() {
				if _, _, err := ParseHeader(bb.frame, RoleServer, 1<<30); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkPutHeader(b *testing.B) {
	for _, bb := range []struct {
		name string
		h    ws.Header
	}{
		{name: "small", h: ws.Header{Fin: true, OpCode: ws.OpText, Length: 5}},
		{name: "len64-masked", h: ws.Header{Fin: true, OpCode: ws.OpBinary, Length: 1 << 20, Masked: true, Mask: [4]byte{1, 2, 3, 4}}},
	} {
		b.Run(bb.name, func(b *testing.B) {
			var buf [MaxHeaderSize]byte
			b.ReportAllocs()
			b.SetBytes(int64(HeaderSize(bb.h)))
			for b.Loop() {
				PutHeader(buf[:], bb.h)
			}
		})
	}
}

// BenchmarkParseUpgrade is a whole server handshake on bytes: find the end
// of the block, validate it, write the 101 into a reused buffer.
func BenchmarkParseUpgrade(b *testing.B) {
	block := []byte(rfcRequest)
	out := make([]byte, 0, 256)
	b.ReportAllocs()
	b.SetBytes(int64(len(block)))
	for b.Loop() {
		var s HeaderScanner
		n, err := s.Scan(block, 0)
		if err != nil {
			b.Fatal(err)
		}
		req, err := ParseUpgrade(block[:n])
		if err != nil {
			b.Fatal(err)
		}
		out = AppendAccept(out[:0], req.Key, SelectProtocol([]string{"chat"}, req.Protocols))
	}
	if !bytes.Contains(out, []byte(rfcAccept)) {
		b.Fatalf("bad accept %q", out)
	}
}

func BenchmarkAcceptKey(b *testing.B) {
	var dst [28]byte
	b.ReportAllocs()
	b.SetBytes(int64(len(rfcKey)))
	for b.Loop() {
		AcceptKey(&dst, rfcKey)
	}
}

func BenchmarkUTF8Validator(b *testing.B) {
	for _, bb := range []struct {
		name string
		p    []byte
	}{
		{name: "ascii-1KiB", p: benchASCII},
		{name: "mixed", p: benchMixed},
	} {
		b.Run(bb.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(bb.p)))
			for b.Loop() {
				var v UTF8Validator
				if !v.Write(bb.p) || !v.Complete() {
					b.Fatal("invalid")
				}
			}
		})
	}
}

func BenchmarkMask(b *testing.B) {
	p := make([]byte, 1024)
	mask := [4]byte{0x37, 0xfa, 0x21, 0x3d}
	b.ReportAllocs()
	b.SetBytes(int64(len(p)))
	for b.Loop() {
		Mask(p, mask, 0)
	}
}
