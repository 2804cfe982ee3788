package jwtauth

import (
	"encoding/json"
	"math"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// The header and the claims are small JSON objects of which a handful of
// members matter. encoding/json would allocate a map or a struct's
// strings for each token; instead json.Valid (which allocates nothing
// once its pooled scanner is warm) proves the text is JSON, and the
// functions here walk the valid text in place. They assume validity for
// meaning, never for memory safety: on any text they stay in bounds.

// isJSONObject says whether data is valid JSON whose top level is an
// object, which is what a JOSE header and a claims set must be.
func isJSONObject(data []byte) bool {
	i := skipSpace(data, 0)
	return i < len(data) && data[i] == '{' && json.Valid(data)
}

// members walks the members of a valid JSON object, in order.
type members struct {
	data []byte
	pos  int // index of the next byte to read
}

// newMembers starts a walk over obj, which must satisfy isJSONObject.
func newMembers(obj []byte) members {
	i := skipSpace(obj, 0)
	return members{data: obj, pos: i + 1} // past the '{'
}

// next returns the next member's name and value, both as raw JSON text
// (the name with its quotes), or ok false after the last.
func (m *members) next() (name, value []byte, ok bool) {
	d := m.data
	i := skipSpace(d, m.pos)
	if i < len(d) && d[i] == ',' {
		i = skipSpace(d, i+1)
	}
	if i >= len(d) || d[i] != '"' {
		m.pos = len(d)
		return nil, nil, false // '}' or, on text that is not valid, anything
	}
	nameEnd := endOfString(d, i)
	name = d[i:nameEnd]
	i = skipSpace(d, nameEnd)
	if i >= len(d) || d[i] != ':' {
		m.pos = len(d)
		return nil, nil, false
	}
	i = skipSpace(d, i+1)
	valueEnd := endOfValue(d, i)
	value = d[i:valueEnd]
	m.pos = valueEnd
	return name, value, true
}

// elements walks the elements of a valid JSON array.
type elements struct {
	data []byte
	pos  int
}

// newElements starts a walk over arr, a valid JSON array with no
// surrounding space.
func newElements(arr []byte) elements { return elements{data: arr, pos: 1} }

// next returns the next element as raw JSON text, or ok false after the
// last.
func (e *elements) next() (value []byte, ok bool) {
	d := e.data
	i := skipSpace(d, e.pos)
	if i < len(d) && d[i] == ',' {
		i = skipSpace(d, i+1)
	}
	if i >= len(d) || d[i] == ']' {
		e.pos = len(d)
		return nil, false
	}
	end := endOfValue(d, i)
	if end == i {
		e.pos = len(d)
		return nil, false // not valid JSON: stop rather than loop
	}
	e.pos = end
	return d[i:end], true
}

func skipSpace(d []byte, i int) int {
	for i < len(d) {
		switch d[i] {
		case ' ', '\t', '\r', '\n':
			i++
		default:
			return i
		}
	}
	return i
}

// endOfString returns the index just past the string that opens at i.
func endOfString(d []byte, i int) int {
	for j := i + 1; j < len(d); j++ {
		switch d[j] {
		case '\\':
			j++ // the escaped byte cannot close the string
		case '"':
			return j + 1
		}
	}
	return len(d)
}

// endOfValue returns the index just past the value that starts at i.
func endOfValue(d []byte, i int) int {
	if i >= len(d) {
		return len(d)
	}
	switch d[i] {
	case '"':
		return endOfString(d, i)
	case '{', '[':
		depth := 0
		for j := i; j < len(d); j++ {
			switch d[j] {
			case '"':
				j = endOfString(d, j) - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1
				}
			}
		}
		return len(d)
	}
	// A number, true, false or null: it ends where the syntax resumes.
	j := i
	for j < len(d) {
		switch d[j] {
		case ',', '}', ']', ' ', '\t', '\r', '\n':
			return j
		}
		j++
	}
	return j
}

// appendUnquoted appends the text of the JSON string literal s (quotes
// included) to dst, escapes resolved as encoding/json resolves them (a
// lone surrogate becomes U+FFFD). It returns false if s is not a string
// literal. Callers give dst the capacity of s, so it never grows.
func appendUnquoted(dst, s []byte) ([]byte, bool) {
	if len(s) < 2 || s[0] != '"' || s[len(s)-1] != '"' {
		return dst, false
	}
	s = s[1 : len(s)-1]
	for i := 0; i < len(s); {
		c := s[i]
		if c != '\\' {
			dst = append(dst, c)
			i++
			continue
		}
		if i+1 >= len(s) {
			return dst, false
		}
		switch s[i+1] {
		case '"', '\\', '/':
			dst = append(dst, s[i+1])
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r, ok := hex4(s, i+2)
			if !ok {
				return dst, false
			}
			i += 6
			if utf16.IsSurrogate(r) {
				// A high surrogate followed by an escaped low one is one
				// character; anything else leaves a lone surrogate.
				if low, ok := escapedRune(s, i); ok {
					if pair := utf16.DecodeRune(r, low); pair != utf8.RuneError {
						dst = utf8.AppendRune(dst, pair)
						i += 6
						continue
					}
				}
				r = utf8.RuneError
			}
			dst = utf8.AppendRune(dst, r)
			continue
		default:
			return dst, false
		}
		i += 2
	}
	return dst, true
}

// escapedRune reads a \uXXXX escape at s[i:].
func escapedRune(s []byte, i int) (rune, bool) {
	if i+1 >= len(s) || s[i] != '\\' || s[i+1] != 'u' {
		return 0, false
	}
	return hex4(s, i+2)
}

func hex4(s []byte, i int) (rune, bool) {
	if i+4 > len(s) {
		return 0, false
	}
	var r rune
	for _, c := range s[i : i+4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// NumericDate bounds (RFC 7519 section 2: seconds since 1970 UTC): years
// 0001 to 9999, so that every accepted date is a time.Time and every
// comparison exact.
const (
	minNumericDate = -62135596800 // 0001-01-01T00:00:00Z
	maxNumericDate = 253402300799 // 9999-12-31T23:59:59Z
)

// parseNumericDate reads a JSON number as a NumericDate, fractions of a
// second included, as Unix seconds and nanoseconds. It returns false for
// a value that is not a number or lies outside the bounds.
func parseNumericDate(v []byte) (sec, nsec int64, ok bool) {
	if len(v) == 0 || (v[0] != '-' && (v[0] < '0' || v[0] > '9')) {
		return 0, 0, false
	}
	// The common case, an integer of at most 12 digits, needs no float.
	if len(v) <= 12 {
		var n int64
		digits := true
		for _, c := range v {
			if c < '0' || c > '9' {
				digits = false
				break
			}
			n = n*10 + int64(c-'0')
		}
		if digits {
			if n > maxNumericDate {
				return 0, 0, false
			}
			return n, 0, true
		}
	}
	f, err := strconv.ParseFloat(string(v), 64)
	if err != nil || math.IsNaN(f) || f < minNumericDate || f > maxNumericDate {
		return 0, 0, false
	}
	whole := math.Floor(f)
	sec = int64(whole)
	nsec = int64(math.Round((f - whole) * 1e9))
	if nsec >= 1e9 { // a fraction that rounds up to the next second
		sec, nsec = sec+1, 0
	}
	return sec, nsec, true
}
