package loadtest

import (
	"bytes"
	"errors"
	"fmt"
)

// A message carries who sent it, its sequence number on that session and
// when it was sent, so the echo alone tells the round-trip time and whether
// anything was lost, reordered or crossed over from another session.
// Text and binary messages carry the same bytes; they are ASCII, so text
// messages are valid UTF-8 and proxies that validate text pay their real
// cost. From jsonMinSize bytes on, the message is a JSON object like the
// stress report's:
//
//	{"c":"0000002a","s":"00000007","t":"000000000bebc200","p":"abcdef..."}
//
// Below it, the compact form is the three hex fields back to back followed
// by padding. Padding is deterministic, so the whole echo is checked.
const (
	// MinMessageSize is the smallest message the generator can send.
	MinMessageSize = 32
	jsonMinSize    = 64

	jsonConnAt, jsonSeqAt, jsonTimeAt, jsonPadAt = 6, 21, 36, 59
	rawConnAt, rawSeqAt, rawTimeAt, rawPadAt     = 0, 8, 16, 32
)

// errBadEcho marks an echo that is not the message we sent.
var errBadEcho = errors.New("loadtest: echo does not match a sent message")

// payloadLayout is the message template for one size; it is immutable once
// built and shared by every sender and reader.
type payloadLayout struct {
	template                   []byte // a whole message with zero fields
	connAt, seqAt, timeAt, pad int    // field offsets; pad is where padding starts
	padEnd                     int    // where padding ends (before the closing `"}` in JSON)
}

func newPayloadLayout(size int) (*payloadLayout, error) {
	if size < MinMessageSize {
		return nil, fmt.Errorf("loadtest: message size %d is below the minimum of %d bytes", size, MinMessageSize)
	}
	l := &payloadLayout{template: make([]byte, size)}
	const filler = "abcdefghijklmnopqrstuvwxyz0123456789"
	for i := range l.template {
		l.template[i] = filler[i%len(filler)]
	}
	if size >= jsonMinSize {
		l.connAt, l.seqAt, l.timeAt, l.pad, l.padEnd = jsonConnAt, jsonSeqAt, jsonTimeAt, jsonPadAt, size-2
		copy(l.template, `{"c":"00000000","s":"00000000","t":"0000000000000000","p":"`)
		copy(l.template[size-2:], `"}`)
	} else {
		l.connAt, l.seqAt, l.timeAt, l.pad, l.padEnd = rawConnAt, rawSeqAt, rawTimeAt, rawPadAt, size
		copy(l.template, "00000000000000000000000000000000")
	}
	return l, nil
}

// size is the length of every message of this layout.
func (l *payloadLayout) size() int { return len(l.template) }

// fill writes the fields of one message into msg, which must be a copy of
// the template (only the fields change from one message to the next).
func (l *payloadLayout) fill(msg []byte, conn, seq uint32, sentNanos int64) {
	putHex(msg[l.connAt:l.connAt+8], uint64(conn))
	putHex(msg[l.seqAt:l.seqAt+8], uint64(seq))
	putHex(msg[l.timeAt:l.timeAt+16], uint64(sentNanos))
}

// parse checks that msg is a whole message of this layout and returns its
// fields. It reads msg only during the call.
func (l *payloadLayout) parse(msg []byte) (conn, seq uint32, sentNanos int64, err error) {
	if len(msg) != len(l.template) {
		return 0, 0, 0, fmt.Errorf("%w: %d bytes, want %d", errBadEcho, len(msg), len(l.template))
	}
	c, ok1 := getHex(msg[l.connAt : l.connAt+8])
	s, ok2 := getHex(msg[l.seqAt : l.seqAt+8])
	t, ok3 := getHex(msg[l.timeAt : l.timeAt+16])
	if !ok1 || !ok2 || !ok3 {
		return 0, 0, 0, fmt.Errorf("%w: fields are not hex", errBadEcho)
	}
	if !bytes.Equal(msg[l.pad:l.padEnd], l.template[l.pad:l.padEnd]) ||
		!bytes.Equal(msg[:l.connAt], l.template[:l.connAt]) ||
		!bytes.Equal(msg[l.connAt+8:l.seqAt], l.template[l.connAt+8:l.seqAt]) ||
		!bytes.Equal(msg[l.seqAt+8:l.timeAt], l.template[l.seqAt+8:l.timeAt]) ||
		!bytes.Equal(msg[l.timeAt+16:l.pad], l.template[l.timeAt+16:l.pad]) ||
		!bytes.Equal(msg[l.padEnd:], l.template[l.padEnd:]) {
		return 0, 0, 0, fmt.Errorf("%w: framing or padding changed", errBadEcho)
	}
	return uint32(c), uint32(s), int64(t), nil
}

const hexDigits = "0123456789abcdef"

// putHex writes v as len(dst) lowercase hex digits, most significant first.
func putHex(dst []byte, v uint64) {
	for i := len(dst) - 1; i >= 0; i-- {
		dst[i] = hexDigits[v&0xf]
		v >>= 4
	}
}

func getHex(src []byte) (uint64, bool) {
	var v uint64
	for _, c := range src {
		switch {
		case c >= '0' && c <= '9':
			v = v<<4 | uint64(c-'0')
		case c >= 'a' && c <= 'f':
			v = v<<4 | uint64(c-'a'+10)
		default:
			return 0, false
		}
	}
	return v, true
}
