package proxyproto

import (
	"bytes"
	"errors"
	"fmt"
	"io"
)

// Read reads the PROXY protocol header at the start of r, blocking until
// it is whole, and returns it. r is the connection itself (a net.Conn),
// from which the caller has read nothing yet.
//
// Read reads no byte past the header, so the next byte r yields is the
// client's first: the caller hands the same connection to crypto/tls (or
// whatever reads the client) with nothing lost and nothing to put back.
// It does so without peeking, by asking r each time only for bytes that
// every header starting as this one does must still hold: 15 bytes (the
// shortest v1 line) first; then for v2 the 16th byte and the length the
// fixed part announces (three reads in all); for v1 a few fields at a
// time up to the CRLF (TCP4 in about eight reads, TCP6 up to sixteen,
// UNKNOWN with text after it two bytes at a time). The same holds for any
// io.Reader: given a bufio.Reader, Read leaves the client's bytes in it,
// and the caller must go on reading through it.
//
// Each read returns whatever has arrived, and Parse judges it at once, so
// a client that is not a proxy is refused at its first bytes (ErrNotProxy)
// rather than waited on. The caller bounds the wait with a deadline on
// the connection.
//
// Errors: ErrNotProxy; an error wrapping ErrMalformed; or r's error,
// wrapped (errors.Is and errors.As see through): io.EOF if r ended before
// its first byte, io.ErrUnexpectedEOF if within the header, a timeout. On
// error, what was read is lost: close the connection.
//
// Safe for concurrent use (on different readers); it allocates one
// buffer of MaxLen bytes.
func Read(r io.Reader) (Header, error) {
	var buf [MaxLen]byte
	have := 0
	var readErr error // from the last read, reported once its bytes are judged
	empty := 0        // reads in a row that returned nothing and no error
	for {
		h, n, err := Parse(buf[:have])
		if err == nil {
			if n != have {
				// Unreachable: the bytes asked for never pass the end.
				panic(fmt.Sprintf("proxyproto: read %d bytes for a header of %d", have, n))
			}
			return h, nil
		}
		if !errors.Is(err, ErrNeedMore) {
			return Header{}, err
		}
		if readErr != nil {
			if readErr == io.EOF && have > 0 {
				readErr = io.ErrUnexpectedEOF
			}
			return Header{}, fmt.Errorf("proxyproto: reading the header: %w", readErr)
		}
		want := have + stillNeeded(buf[:have])
		m, err := r.Read(buf[have:want])
		have += m
		readErr = err
		if m > 0 || err != nil {
			empty = 0
		} else if empty++; empty == 100 {
			readErr = io.ErrNoProgress
		}
	}
}

// shortestV1 is the shortest v1 line, "PROXY UNKNOWN\r\n"; the shortest
// v2 header is its 16 fixed bytes.
const shortestV1 = len(v1Signature) + len("UNKNOWN\r\n")

// stillNeeded is a number of bytes that every header starting with p
// still holds (at least 1), p being what Parse called the start of one.
func stillNeeded(p []byte) int {
	switch {
	case len(p) == 0:
		return min(shortestV1, v2FixedLen)
	case p[0] == v2Signature[0]:
		if len(p) < v2FixedLen {
			return v2FixedLen - len(p)
		}
		return v2FixedLen + int(p[14])<<8 + int(p[15]) - len(p)
	case len(p) < shortestV1:
		return shortestV1 - len(p)
	case p[len(p)-1] == '\r':
		return 1 // the LF
	}
	// A v1 line: at least its CRLF, and for TCP4 and TCP6 the fields
	// still missing, each a space and at least one character. The whole
	// line has five spaces.
	need := 2
	if bytes.HasPrefix(p[len(v1Signature):], []byte("TCP4 ")) || bytes.HasPrefix(p[len(v1Signature):], []byte("TCP6 ")) {
		need += 2 * (5 - bytes.Count(p, []byte(" ")))
		if p[len(p)-1] == ' ' {
			need++ // the field that space opens
		}
	}
	// An IPv6 address is only checked for its characters until whole, so
	// p may be no valid line's start; never ask past the longest line.
	return min(need, MaxV1Len-len(p))
}
