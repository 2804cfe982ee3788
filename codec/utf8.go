package codec

import "unicode/utf8"

// UTF8Validator checks UTF-8 incrementally, so a text message split across
// frames (or a frame split across reads) is validated without being joined:
// a code point may be cut anywhere. It rejects overlong forms, surrogates and
// code points above U+10FFFF, like unicode/utf8, and it fails fast: it
// rejects as soon as the input so far cannot begin any valid text, not at
// the end of the message. The bulk of each write is checked by utf8.Valid;
// at most 3 bytes of a code point cut by the end of a write are carried to
// the next. The zero value is ready to use and it does not allocate.
type UTF8Validator struct {
	carry [utf8.UTFMax]byte // the start of a code point cut by the end of the last write
	n     uint8             // bytes in carry
	bad   bool              // rejected: stays so until Reset
}

// Write feeds p and reports whether the input so far can still be valid.
// After it returns false the validator stays in the reject state.
func (v *UTF8Validator) Write(p []byte) bool {
	if v.bad {
		return false
	}
	if v.n > 0 {
		// Complete the code point carried over, a byte at a time.
		for len(p) > 0 && !utf8.FullRune(v.carry[:v.n]) {
			v.carry[v.n] = p[0]
			v.n++
			p = p[1:]
		}
		if !utf8.FullRune(v.carry[:v.n]) { // p ran out first
			v.bad = !validPrefix(v.carry[:v.n])
			return !v.bad
		}
		if r, size := utf8.DecodeRune(v.carry[:v.n]); r == utf8.RuneError && size <= 1 {
			v.bad = true
			return false
		}
		v.n = 0
	}
	cut := cutCodePoint(p)
	if !utf8.Valid(p[:len(p)-cut]) || !validPrefix(p[len(p)-cut:]) {
		v.bad = true
		return false
	}
	v.n = uint8(copy(v.carry[:], p[len(p)-cut:]))
	return true
}

// Complete reports whether everything written so far is valid and ends on
// a code point boundary: call it at the end of a message.
func (v *UTF8Validator) Complete() bool { return !v.bad && v.n == 0 }

// Reset makes the validator ready for a new message.
func (v *UTF8Validator) Reset() { *v = UTF8Validator{} }

// ValidUTF8 reports whether p is complete, valid UTF-8.
func ValidUTF8(p []byte) bool { return utf8.Valid(p) }

// cutCodePoint is how many bytes at the end of p begin a multi-byte code
// point that p does not finish (0 to 3). Bytes that cannot begin one are
// left to utf8.Valid to refuse.
func cutCodePoint(p []byte) int {
	for back := 1; back <= 3 && back <= len(p); back++ {
		c := p[len(p)-back]
		if c < 0x80 {
			return 0
		}
		if c < 0xc0 { // a continuation byte: the lead is further back
			continue
		}
		if need := leadLength(c); need > back {
			return back
		}
		return 0
	}
	return 0
}

// leadLength is the length of the code point a lead byte announces (0 for
// a byte that is no valid lead).
func leadLength(c byte) int {
	switch {
	case c >= 0xc2 && c <= 0xdf:
		return 2
	case c >= 0xe0 && c <= 0xef:
		return 3
	case c >= 0xf0 && c <= 0xf4:
		return 4
	}
	return 0
}

// validPrefix reports whether p (shorter than the code point its first
// byte announces) can still begin a valid code point: the second byte's
// range depends on the lead (no overlong forms, no surrogates, nothing
// past U+10FFFF), later bytes are continuation bytes.
func validPrefix(p []byte) bool {
	if len(p) == 0 {
		return true
	}
	if leadLength(p[0]) <= len(p)-1 {
		return false
	}
	for i, c := range p[1:] {
		lo, hi := byte(0x80), byte(0xbf)
		if i == 0 {
			switch p[0] {
			case 0xe0:
				lo = 0xa0
			case 0xed:
				hi = 0x9f
			case 0xf0:
				lo = 0x90
			case 0xf4:
				hi = 0x8f
			}
		}
		if c < lo || c > hi {
			return false
		}
	}
	return true
}
