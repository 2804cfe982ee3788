package codec

import (
	"math/rand"
	"testing"
)

// refDFA is Bjoern Hoehrmann's UTF-8 DFA, the validator's reference for
// failing fast: it rejects at the first byte after which no valid text
// can follow. States are multiples of 12: 0 accept, 12 reject.
type refDFA struct{ state uint8 }

func (d *refDFA) step(c byte) bool {
	d.state = refTransitions[d.state+refClasses[c]]
	return d.state != 12
}

var refClasses [256]uint8

var refTransitions = [108]uint8{
	0, 12, 24, 36, 60, 96, 84, 12, 12, 12, 48, 72,
	12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12,
	12, 0, 12, 12, 12, 12, 12, 0, 12, 0, 12, 12,
	12, 24, 12, 12, 12, 12, 12, 24, 12, 24, 12, 12,
	12, 12, 12, 12, 12, 12, 12, 24, 12, 12, 12, 12,
	12, 24, 12, 12, 12, 12, 12, 12, 12, 24, 12, 12,
	12, 12, 12, 12, 12, 12, 12, 36, 12, 36, 12, 12,
	12, 36, 12, 12, 12, 12, 12, 36, 12, 36, 12, 12,
	12, 36, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12,
}

func init() {
	set := func(lo, hi int, class uint8) {
		for b := lo; b <= hi; b++ {
			refClasses[b] = class
		}
	}
	set(0x00, 0x7f, 0)
	set(0x80, 0x8f, 1)
	set(0x90, 0x9f, 9)
	set(0xa0, 0xbf, 7)
	set(0xc0, 0xc1, 8)
	set(0xc2, 0xdf, 2)
	set(0xe0, 0xe0, 10)
	set(0xe1, 0xec, 3)
	set(0xed, 0xed, 4)
	set(0xee, 0xef, 3)
	set(0xf0, 0xf0, 11)
	set(0xf1, 0xf3, 6)
	set(0xf4, 0xf4, 5)
	set(0xf5, 0xff, 8)
}

// TestUTF8FailsFast: fed a byte at a time, the validator rejects at exactly
// the byte the DFA does (an endpoint must fail a text message as soon as
// its bytes cannot be UTF-8, not when the frame ends), and fed in random
// pieces it rejects in the piece holding that byte.
func TestUTF8FailsFast(t *testing.T) {
	rng := rand.New(rand.NewSource(11))
	alphabet := []string{"a", "κ", "€", "😀", "\U0010ffff", "\xc0", "\xc2", "\xe0\x80", "\xe0", "\xed\xa0", "\xed",
		"\x80", "\xbf", "\xf0\x8f", "\xf0", "\xf4\x90", "\xf4", "\xf5", "\xff"}
	for iter := 0; iter < 20000; iter++ {
		var text []byte
		for range rng.Intn(12) {
			text = append(text, alphabet[rng.Intn(len(alphabet))]...)
		}
		var d refDFA
		want := -1 // index of the byte the DFA rejects at
		for i, c := range text {
			if !d.step(c) {
				want = i
				break
			}
		}
		var v UTF8Validator
		got := -1
		for i := range text {
			if !v.Write(text[i : i+1]) {
				got = i
				break
			}
		}
		if got != want {
			t.Fatalf("%x: byte by byte rejected at %d, the DFA at %d", text, got, want)
		}
		// In pieces: the rejection comes with the piece that holds it.
		v.Reset()
		start := 0
		for start < len(text) {
			end := start + 1 + rng.Intn(len(text)-start)
			ok := v.Write(text[start:end])
			holds := want >= start && want < end
			if ok == holds {
				t.Fatalf("%x: piece [%d,%d) accepted=%v, DFA rejects at %d", text, start, end, ok, want)
			}
			if !ok {
				break
			}
			start = end
		}
	}
}
