package codec

// Split-input tests: every parser here is fed the same bytes cut in every
// way a network could cut them, and must give the same answer as when fed
// the whole input at once.

import (
	"bytes"
	"errors"
	"math/rand"
	"sort"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/gobwas/ws"
)

// randomCuts returns sorted distinct cut points in (0, n), at most max.
func randomCuts(rng *rand.Rand, n, max int) []int {
	if n < 2 {
		return nil
	}
	k := rng.Intn(max + 1)
	seen := make(map[int]bool, k)
	cuts := make([]int, 0, k)
	for range k {
		c := 1 + rng.Intn(n-1)
		if !seen[c] {
			seen[c] = true
			cuts = append(cuts, c)
		}
	}
	sort.Ints(cuts)
	return cuts
}

// pieces splits p at cuts.
func pieces(p []byte, cuts []int) [][]byte {
	out := make([][]byte, 0, len(cuts)+1)
	prev := 0
	for _, c := range cuts {
		out = append(out, p[prev:c])
		prev = c
	}
	return append(out, p[prev:])
}

// maskedHello is the masked "Hello" frame of RFC 6455 section 5.7.
var maskedHello = []byte{0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58}

// scanStreams are request blocks with what follows them in the same buffer.
var scanStreams = []struct {
	name     string
	block    string
	trailing []byte
}{
	{
		name:  "RFC request alone",
		block: rfcRequest,
	},
	{
		name:     "RFC request and a masked frame",
		block:    rfcRequest,
		trailing: maskedHello,
	},
	{
		name:     "request and two frames",
		block:    getRequest(plus("Sec-WebSocket-Extensions: permessage-deflate", "User-Agent: test/1.0")...),
		trailing: append(append([]byte{0x89, 0x80, 1, 2, 3, 4}, maskedHello...), 0x88, 0x80, 0, 0, 0, 0),
	},
	{
		name:     "request and bytes that look like a header end",
		block:    getRequest(baseHeaders...),
		trailing: []byte("\r\n\r\n\r\n"),
	},
	{
		name:     "CR and LF runs before the end",
		block:    "\r\r\n\n\r\n\rX\r\r\n\r\n",
		trailing: []byte("\r\n"),
	},
}

func TestHeaderScannerByteAtATime(t *testing.T) {
	for _, tt := range scanStreams {
		t.Run(tt.name, func(t *testing.T) {
			stream := append([]byte(tt.block), tt.trailing...)
			var s HeaderScanner
			for i := 0; i <= len(stream); i++ {
				n, err := s.Scan(stream[:i], 0)
				if i < len(tt.block) {
					if n != 0 || !errors.Is(err, ErrNeedMore) {
						t.Fatalf(
							"prefix %d: Scan = %d, %v; want ErrNeedMore",
							i, n, err,
						)
					}
					continue
				}
				if err != nil || n != len(tt.block) {
					t.Fatalf(
						"prefix %d: Scan = %d, %v; want %d",
						i, n, err, len(tt.block),
					)
				}
				if !bytes.Equal(stream[n:], tt.trailing) {
					t.Fatalf(
						"after the block: %q, want %q",
						stream[n:], tt.trailing,
					)
				}
				break
			}
		})
	}
}

func TestHeaderScannerTwoPieces(t *testing.T) {
	for _, tt := range scanStreams {
		stream := append([]byte(tt.block), tt.trailing...)
		for k := 0; k <= len(stream); k++ {
			var s HeaderScanner
			n, err := s.Scan(stream[:k], 0)
			if errors.Is(err, ErrNeedMore) {
				n, err = s.Scan(stream, 0)
			}
			if err != nil || n != len(tt.block) || !bytes.Equal(stream[n:], tt.trailing) {
				t.Fatalf(
					"%s cut at %d: Scan = %d, %v; want %d",
					tt.name, k, n, err, len(tt.block),
				)
			}
		}
	}
}

func TestHeaderScannerRandomCuts(t *testing.T) {
	rng := rand.New(rand.NewSource(6455))
	for _, tt := range scanStreams {
		stream := append([]byte(tt.block), tt.trailing...)
		for iter := 0; iter < 1000; iter++ {
			cuts := append(randomCuts(rng, len(stream), 12), len(stream))
			var s HeaderScanner
			n, err := 0, ErrNeedMore
			for _, c := range cuts {
				// The network buffer holds everything received so far.
				n, err = s.Scan(stream[:c], 0)
				if !errors.Is(err, ErrNeedMore) {
					break
				}
				if c >= len(tt.block) {
					t.Fatalf(
						"%s cuts %v: need more at %d with the whole block in",
						tt.name, cuts, c,
					)
				}
			}
			if err != nil || n != len(tt.block) || !bytes.Equal(stream[n:], tt.trailing) {
				t.Fatalf(
					"%s cuts %v: Scan = %d, %v; want %d",
					tt.name, cuts, n, err, len(tt.block),
				)
			}
		}
	}
}

// TestHeaderScannerLimitSplit checks that the 431 limit does not depend on
// how the input arrives.
func TestHeaderScannerLimitSplit(t *testing.T) {
	rng := rand.New(rand.NewSource(431))
	const max = 200
	fits := []byte(getRequest(with("Host: " + strings.Repeat("h", max-len(getRequest(with("Host: ")...))))...))
	if len(fits) != max {
		t.Fatalf(
			"test block is %d bytes, want %d",
			len(fits), max,
		)
	}
	tooBig := []byte(getRequest(with("Host: " + strings.Repeat("h", max+1-len(getRequest(with("Host: ")...))))...))
	for iter := 0; iter < 500; iter++ {
		for _, tt := range []struct {
			p    []byte
			want int // block length, or 0 for 431
		}{
			{p: append(bytes.Clone(fits), maskedHello...), want: max},
			{p: tooBig, want: 0},
		} {
			cuts := append(randomCuts(rng, len(tt.p), 8), len(tt.p))
			var s HeaderScanner
			var (
				n   int
				err error
			)
			for _, c := range cuts {
				if n, err = s.Scan(tt.p[:c], max); !errors.Is(err, ErrNeedMore) {
					break
				}
			}
			if tt.want > 0 && (err != nil || n != tt.want) {
				t.Fatalf(
					"cuts %v: Scan = %d, %v; want %d",
					cuts, n, err, tt.want,
				)
			}
			if tt.want == 0 && asHandshakeError(t, err).Status != 431 {
				t.Fatalf(
					"cuts %v: Scan = %d, %v; want 431",
					cuts, n, err,
				)
			}
		}
	}
}

// frameHeaders are valid headers for the role that parses them.
var frameHeaders = []struct {
	role Role
	h    ws.Header
}{
	{RoleClient, ws.Header{Fin: true, OpCode: ws.OpText, Length: 5}},
	{RoleServer, ws.Header{Fin: true, OpCode: ws.OpText, Length: 5, Masked: true, Mask: [4]byte{0x37, 0xfa, 0x21, 0x3d}}},
	{RoleClient, ws.Header{Fin: false, OpCode: ws.OpText, Length: 3}},
	{RoleClient, ws.Header{Fin: true, OpCode: ws.OpContinuation, Length: 2}},
	{RoleServer, ws.Header{Fin: true, OpCode: ws.OpPing, Length: 125, Masked: true, Mask: [4]byte{1, 2, 3, 4}}},
	{RoleClient, ws.Header{Fin: true, OpCode: ws.OpClose, Length: 0}},
	{RoleClient, ws.Header{Fin: true, OpCode: ws.OpBinary, Length: 256}},
	{RoleServer, ws.Header{Fin: true, OpCode: ws.OpBinary, Length: 65535, Masked: true, Mask: [4]byte{0xff, 0, 0xff, 0}}},
	{RoleClient, ws.Header{Fin: true, OpCode: ws.OpBinary, Length: 65536}},
	{RoleServer, ws.Header{Fin: false, OpCode: ws.OpBinary, Length: 1 << 40, Masked: true, Mask: [4]byte{9, 8, 7, 6}}},
	{RoleClient, ws.Header{Fin: true, OpCode: ws.OpBinary, Length: 1<<63 - 1}},
}

func TestParseHeaderPrefixes(t *testing.T) {
	for _, tt := range frameHeaders {
		var buf [MaxHeaderSize + 4]byte
		hn := PutHeader(buf[:], tt.h)
		// Bytes of the payload follow the header in the buffer.
		copy(buf[hn:], "data")
		for i := 0; i < hn; i++ {
			h, n, err := ParseHeader(buf[:i], tt.role, 0)
			if n != 0 || !errors.Is(err, ErrNeedMore) {
				t.Fatalf(
					"%+v prefix %d: ParseHeader = %+v, %d, %v; want ErrNeedMore",
					tt.h, i, h, n, err,
				)
			}
		}
		for i := hn; i <= hn+4; i++ {
			h, n, err := ParseHeader(buf[:i], tt.role, 0)
			if err != nil || n != hn || h != tt.h {
				t.Fatalf(
					"%+v with %d bytes: ParseHeader = %+v, %d, %v",
					tt.h, i, h, n, err,
				)
			}
		}
	}
}

// TestFrameStreamRandomCuts reads a stream of frames that arrives in random
// pieces, the way a connection's read loop does: parse a header out of the
// accumulated buffer, wait for its payload, unmask it, drop what was used.
func TestFrameStreamRandomCuts(t *testing.T) {
	type frame struct {
		h       ws.Header
		payload []byte
	}
	rng := rand.New(rand.NewSource(5))
	var want []frame
	var stream []byte
	add := func(h ws.Header, payload []byte) {
		h.Length = int64(len(payload))
		want = append(want, frame{h: h, payload: payload})
		var hb [MaxHeaderSize]byte
		stream = append(stream, hb[:PutHeader(hb[:], h)]...)
		masked := bytes.Clone(payload)
		Mask(masked, h.Mask, 0)
		stream = append(stream, masked...)
	}
	// RFC 6455 section 5.7 examples, masked as a client sends them.
	add(ws.Header{Fin: true, OpCode: ws.OpText, Masked: true, Mask: [4]byte{0x37, 0xfa, 0x21, 0x3d}}, []byte("Hello"))
	add(ws.Header{Fin: false, OpCode: ws.OpText, Masked: true, Mask: [4]byte{1, 2, 3, 4}}, []byte("Hel"))
	add(ws.Header{Fin: true, OpCode: ws.OpPing, Masked: true, Mask: [4]byte{5, 6, 7, 8}}, []byte("Hello"))
	add(ws.Header{Fin: true, OpCode: ws.OpContinuation, Masked: true, Mask: [4]byte{9, 10, 11, 12}}, []byte("lo"))
	big := make([]byte, 256)
	rng.Read(big)
	add(ws.Header{Fin: true, OpCode: ws.OpBinary, Masked: true, Mask: [4]byte{0xde, 0xad, 0xbe, 0xef}}, big)
	huge := make([]byte, 65536+3)
	rng.Read(huge)
	add(ws.Header{Fin: true, OpCode: ws.OpBinary, Masked: true, Mask: [4]byte{0xca, 0xfe, 0xba, 0xbe}}, huge)
	add(ws.Header{Fin: true, OpCode: ws.OpText, Masked: true, Mask: [4]byte{0, 0, 0, 1}}, []byte{})
	add(ws.Header{Fin: true, OpCode: ws.OpClose, Masked: true, Mask: [4]byte{7, 7, 7, 7}}, []byte{0x03, 0xe8, 'o', 'k'})

	for iter := 0; iter < 200; iter++ {
		// Mostly small pieces, so header cuts are common.
		cuts := randomCuts(rng, len(stream), 400)
		var buf []byte
		var got []frame
		for _, piece := range pieces(stream, cuts) {
			buf = append(buf, piece...)
			for {
				h, n, err := ParseHeader(buf, RoleServer, 1<<20)
				if errors.Is(err, ErrNeedMore) {
					break
				}
				if err != nil {
					t.Fatalf(
						"cuts %v: ParseHeader: %v",
						cuts, err,
					)
				}
				if int64(len(buf)-n) < h.Length {
					break
				}
				payload := bytes.Clone(buf[n : n+int(h.Length)])
				Mask(payload, h.Mask, 0)
				got = append(got, frame{h: h, payload: payload})
				buf = buf[n+int(h.Length):]
			}
		}
		if len(buf) != 0 || len(got) != len(want) {
			t.Fatalf(
				"iteration %d: %d frames and %d bytes left, want %d frames",
				iter, len(got), len(buf), len(want),
			)
		}
		for i := range want {
			if got[i].h != want[i].h || !bytes.Equal(got[i].payload, want[i].payload) {
				t.Fatalf(
					"iteration %d frame %d: %+v, want %+v",
					iter, i, got[i].h, want[i].h,
				)
			}
		}
	}
}

// utf8Texts are valid and invalid inputs for the streaming validator.
var utf8Texts = []string{
	"",
	"Hello",
	"κόσμε",
	"Hello-µ@ßöäüàá-UTF-8!!",
	"日本語のテキスト, 中文文本, 한국어",
	"emoji 😀🎉👍🏽 and flags 🇫🇷",
	"\U0010ffff\U00010000\u0080\u07ff\u0800\uffff\ud7ff\ue000",
	"an ASCII run of more than eight bytes, then κόσμε, then more ASCII text",
	// Invalid.
	"\xc0\xaf",                         // overlong '/'
	"\xe0\x80\xaf",                     // overlong '/' in 3 bytes
	"\xf0\x80\x80\xaf",                 // overlong '/' in 4 bytes
	"\xc1\xbf",                         // overlong U+007F
	"\xe0\x9f\xbf",                     // overlong U+07FF
	"\xf0\x8f\xbf\xbf",                 // overlong U+FFFF
	"\xed\xa0\x80",                     // surrogate U+D800
	"\xed\xbf\xbf",                     // surrogate U+DFFF
	"\xed\xa0\x80\xed\xb0\x80",         // surrogate pair, CESU-8
	"\xf4\x90\x80\x80",                 // U+110000
	"\xf5\x80\x80\x80",                 // lead byte past U+10FFFF
	"\xf8\x88\x80\x80\x80",             // 5-byte form
	"\xff",                             // never in UTF-8
	"\x80",                             // lone continuation
	"κόσμ\xce",                         // truncated 2-byte
	"\xe2\x82",                         // truncated euro sign
	"\xf0\x9f\x98",                     // truncated emoji
	"Hello\xf0\x9f\x98 world",          // truncated emoji mid-text
	"κόσμε\xed\xa0\x80κόσμε",           // surrogate mid-text
	"abcdefghijklmnopqrst\xc0\xaf",     // after a long ASCII run
	"abcdefghijklmnopqrstuvwx\x80yz",   // continuation after 8-byte blocks
	"\xce\xba\xe1\xbd\xb9\xcf\x83\xce", // κόσ then a cut rune
}

// validatePieces runs a fresh UTF8Validator over pieces and checks the
// contract of Write: once it says no, it keeps saying no.
func validatePieces(t *testing.T, ps [][]byte) bool {
	t.Helper()
	var v UTF8Validator
	ok := true
	for _, p := range ps {
		w := v.Write(p)
		if !ok && w {
			t.Fatalf(
				"Write(%q) accepted after a rejection; pieces %q",
				p, ps,
			)
		}
		ok = w
	}
	return ok && v.Complete()
}

func TestUTF8ValidatorEveryCut(t *testing.T) {
	for _, text := range utf8Texts {
		p := []byte(text)
		want := utf8.Valid(p)
		if got := ValidUTF8(p); got != want {
			t.Fatalf(
				"ValidUTF8(%q) = %v, want %v",
				text, got, want,
			)
		}
		for i := 0; i <= len(p); i++ {
			if got := validatePieces(t, [][]byte{p[:i], p[i:]}); got != want {
				t.Fatalf(
					"%q cut at %d: %v, want %v",
					text, i, got, want,
				)
			}
			if len(p) > 40 {
				continue
			}
			for j := i; j <= len(p); j++ {
				if got := validatePieces(t, [][]byte{p[:i], p[i:j], p[j:]}); got != want {
					t.Fatalf(
						"%q cut at %d and %d: %v, want %v",
						text, i, j, got, want,
					)
				}
			}
		}
		// One byte at a time, with empty writes between.
		var ps [][]byte
		for i := range p {
			ps = append(ps, p[i:i+1], nil)
		}
		if got := validatePieces(t, ps); got != want {
			t.Fatalf(
				"%q byte by byte: %v, want %v",
				text, got, want,
			)
		}
	}
}

func TestUTF8ValidatorRandomCuts(t *testing.T) {
	rng := rand.New(rand.NewSource(8))
	alphabet := []string{"a", " ", "κ", "ό", "€", "世", "😀", "\U0010ffff", "\xc0", "\xed\xa0", "\x80", "\xf4\x90", "\xff"}
	for iter := 0; iter < 3000; iter++ {
		var text []byte
		if iter < len(utf8Texts)*20 {
			text = []byte(utf8Texts[iter%len(utf8Texts)])
		} else {
			// Random mixes: mostly valid runs, some broken bytes.
			for range rng.Intn(40) {
				k := rng.Intn(len(alphabet))
				if k >= 8 && rng.Intn(3) != 0 {
					k = rng.Intn(8)
				}
				text = append(text, alphabet[k]...)
			}
		}
		cuts := randomCuts(rng, len(text), 10)
		if got, want := validatePieces(t, pieces(text, cuts)), utf8.Valid(text); got != want {
			t.Fatalf(
				"%q cut at %v: %v, want %v",
				text, cuts, got, want,
			)
		}
	}
}

// TestUTF8ValidatorExhaustive compares with unicode/utf8 on every sequence
// of up to 4 bytes drawn from the bytes where the DFA changes class, whole
// and (up to 3 bytes) at every cut.
func TestUTF8ValidatorExhaustive(t *testing.T) {
	edges := []byte{
		0x00, 0x41, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xc1, 0xc2,
		0xdf, 0xe0, 0xe1, 0xec, 0xed, 0xee, 0xef, 0xf0, 0xf1, 0xf3, 0xf4, 0xf5, 0xff,
	}
	var seq [4]byte
	var rec func(depth int)
	rec = func(depth int) {
		p := seq[:depth]
		want := utf8.Valid(p)
		if got := ValidUTF8(p); got != want {
			t.Fatalf(
				"ValidUTF8(%x) = %v, want %v",
				p, got, want,
			)
		}
		if depth <= 3 {
			for i := 0; i <= depth; i++ {
				if got := validatePieces(t, [][]byte{p[:i], p[i:]}); got != want {
					t.Fatalf(
						"%x cut at %d: %v, want %v",
						p, i, got, want,
					)
				}
			}
		}
		if depth == len(seq) {
			return
		}
		for _, b := range edges {
			seq[depth] = b
			rec(depth + 1)
		}
	}
	rec(0)

	// Every 1- and 2-byte input, not just the edges.
	for a := 0; a < 256; a++ {
		for b := -1; b < 256; b++ {
			p := []byte{byte(a)}
			if b >= 0 {
				p = append(p, byte(b))
			}
			if got, want := validatePieces(t, [][]byte{p[:1], p[1:]}), utf8.Valid(p); got != want {
				t.Fatalf(
					"%x: %v, want %v",
					p, got, want,
				)
			}
		}
	}
}

func TestUTF8ValidatorReset(t *testing.T) {
	var v UTF8Validator
	if v.Write([]byte("\xed\xa0\x80")) || v.Write([]byte("ok")) || v.Complete() {
		t.Fatal(
			"a rejected validator accepted more input",
		)
	}
	v.Reset()
	if !v.Write([]byte("κό")) || !v.Write([]byte("\xcf")) || v.Complete() {
		t.Fatal(
			"after Reset: a cut rune must be incomplete",
		)
	}
	if !v.Write([]byte("\x83με")) || !v.Complete() {
		t.Fatal(
			"after Reset: the rune completed must be accepted",
		)
	}
	v.Reset()
	if !v.Complete() || !v.Write(nil) {
		t.Fatal(
			"a reset validator must be complete",
		)
	}
}
