package codec

// UTF8Validator checks UTF-8 incrementally, so a text message split across
// frames (or a frame split across reads) is validated without being joined:
// a code point may be cut anywhere. It rejects overlong forms, surrogates and
// code points above U+10FFFF, like unicode/utf8. The zero value is ready to
// use and it does not allocate.
type UTF8Validator struct {
	state uint8 // DFA state: utf8Accept between code points
}

const (
	utf8Accept = 0
	utf8Reject = 12
)

// Write feeds p and reports whether the input so far can still be valid.
// After it returns false the validator stays in the reject state.
func (v *UTF8Validator) Write(p []byte) bool {
	state := v.state
	i := 0
	if state == utf8Accept {
		i = asciiPrefix(p)
	}
	for ; i < len(p); i++ {
		state = utf8Transitions[state+utf8Classes[p[i]]]
		if state == utf8Reject {
			break
		}
	}
	v.state = state
	return state != utf8Reject
}

// Complete reports whether everything written so far is valid and ends on
// a code point boundary: call it at the end of a message.
func (v *UTF8Validator) Complete() bool { return v.state == utf8Accept }

// Reset makes the validator ready for a new message.
func (v *UTF8Validator) Reset() { v.state = utf8Accept }

// ValidUTF8 reports whether p is complete, valid UTF-8.
func ValidUTF8(p []byte) bool {
	var v UTF8Validator
	return v.Write(p) && v.Complete()
}

// asciiPrefix returns how many leading bytes of p are ASCII, 8 at a time.
func asciiPrefix(p []byte) int {
	i := 0
	for ; i+8 <= len(p); i += 8 {
		w := uint64(p[i]) | uint64(p[i+1])<<8 | uint64(p[i+2])<<16 | uint64(p[i+3])<<24 |
			uint64(p[i+4])<<32 | uint64(p[i+5])<<40 | uint64(p[i+6])<<48 | uint64(p[i+7])<<56
		if w&0x8080808080808080 != 0 {
			break
		}
	}
	for ; i < len(p) && p[i] < 0x80; i++ {
	}
	return i
}

// The DFA of Bjoern Hoehrmann's "Flexible and Economical UTF-8 Decoder":
// bytes map to character classes, and (state + class) indexes the next state.
// States are multiples of 12: 0 accept, 12 reject.
var utf8Classes [256]uint8 // filled by init

var utf8Transitions = [108]uint8{
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
			utf8Classes[b] = class
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
