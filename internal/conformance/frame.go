package conformance

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"unicode/utf8"
)

// Opcode is a WebSocket frame opcode (4 bits).
type Opcode byte

// Opcodes of RFC 6455 section 5.2.
const (
	OpContinuation Opcode = 0x0
	OpText         Opcode = 0x1
	OpBinary       Opcode = 0x2
	OpClose        Opcode = 0x8
	OpPing         Opcode = 0x9
	OpPong         Opcode = 0xA
)

// IsControl reports whether op is a control opcode (0x8-0xF).
func (op Opcode) IsControl() bool { return op&0x8 != 0 }

func (op Opcode) String() string {
	switch op {
	case OpContinuation:
		return "continuation"
	case OpText:
		return "text"
	case OpBinary:
		return "binary"
	case OpClose:
		return "close"
	case OpPing:
		return "ping"
	case OpPong:
		return "pong"
	}
	return fmt.Sprintf("opcode 0x%X", byte(op))
}

// RSV bits as the Rsv argument of AppendFrame and WriteFrame take them.
const (
	Rsv1 byte = 0x4
	Rsv2 byte = 0x2
	Rsv3 byte = 0x1
)

// Close codes the suite sends or expects.
const (
	CloseNormal          uint16 = 1000
	CloseGoingAway       uint16 = 1001
	CloseProtocolError   uint16 = 1002
	CloseInvalidPayload  uint16 = 1007
	ClosePolicyViolation uint16 = 1008
	CloseMessageTooBig   uint16 = 1009
)

// Frame is one frame as read from the wire (or described for writing).
type Frame struct {
	Fin     bool
	Rsv     byte // RSV1..RSV3 as 0x4, 0x2, 0x1
	Opcode  Opcode
	Masked  bool
	Mask    [4]byte
	Payload []byte // unmasked
}

func (f Frame) String() string {
	s := fmt.Sprintf("%v fin=%v rsv=%d masked=%v len=%d", f.Opcode, f.Fin, f.Rsv, f.Masked, len(f.Payload))
	if f.Opcode == OpClose {
		if code, reason, ok := f.CloseCode(); ok {
			s += fmt.Sprintf(" code=%d reason=%q", code, reason)
		}
	} else if len(f.Payload) <= 32 {
		s += fmt.Sprintf(" payload=%q", f.Payload)
	}
	return s
}

// CloseCode returns the code and reason of a close frame's payload; ok is
// false for an empty payload (no code) or a 1-byte one (malformed).
func (f Frame) CloseCode() (code uint16, reason string, ok bool) {
	if len(f.Payload) < 2 {
		return 0, "", false
	}
	return binary.BigEndian.Uint16(f.Payload), string(f.Payload[2:]), true
}

// RandomMask returns a fresh masking key.
func RandomMask() [4]byte {
	var m [4]byte
	binary.LittleEndian.PutUint32(m[:], rand.Uint32())
	return m
}

// AppendHeader appends a frame header that declares length payload bytes,
// whatever follows it: the caller may send fewer (or more) bytes, to probe
// limits. rsv holds RSV1..RSV3 as 0x4, 0x2, 0x1. The length uses the
// shortest encoding, as RFC 6455 section 5.2 requires.
func AppendHeader(dst []byte, op Opcode, fin bool, rsv byte, masked bool, mask [4]byte, length uint64) []byte {
	b0 := byte(op&0x0f) | (rsv&0x7)<<4
	if fin {
		b0 |= 0x80
	}
	var b1 byte
	if masked {
		b1 = 0x80
	}
	switch {
	case length <= 125:
		dst = append(dst, b0, b1|byte(length))
	case length <= 0xffff:
		dst = append(dst, b0, b1|126)
		dst = binary.BigEndian.AppendUint16(dst, uint16(length))
	default:
		dst = append(dst, b0, b1|127)
		dst = binary.BigEndian.AppendUint64(dst, length)
	}
	if masked {
		dst = append(dst, mask[:]...)
	}
	return dst
}

// AppendFrame appends a whole frame carrying payload, masked with a random
// key if masked is true (clients must mask, RFC 6455 section 5.3).
func AppendFrame(dst []byte, op Opcode, fin bool, rsv byte, masked bool, payload []byte) []byte {
	mask := RandomMask()
	dst = AppendHeader(dst, op, fin, rsv, masked, mask, uint64(len(payload)))
	start := len(dst)
	dst = append(dst, payload...)
	if masked {
		maskBytes(dst[start:], mask)
	}
	return dst
}

// Masked is AppendFrame(nil, op, fin, 0, true, payload): a well-formed
// client frame.
func Masked(op Opcode, fin bool, payload []byte) []byte {
	return AppendFrame(nil, op, fin, 0, true, payload)
}

// ClosePayload is a close frame payload: code then reason.
func ClosePayload(code uint16, reason string) []byte {
	return append(binary.BigEndian.AppendUint16(nil, code), reason...)
}

func maskBytes(p []byte, mask [4]byte) {
	for i := range p {
		p[i] ^= mask[i&3]
	}
}

// Concat joins frames (or any byte slices) into one buffer, to send them
// in a single write.
func Concat(parts ...[]byte) []byte {
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	out := make([]byte, 0, n)
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// TextPayload returns exactly n bytes of valid UTF-8 mixing ASCII with 2-,
// 3- and 4-byte code points, so that messages cross read and frame
// boundaries in the middle of code points. It is deterministic in n.
func TextPayload(n int) []byte {
	runes := []rune{'a', 'é', 'Ж', '€', '한', '𝄞', 'z', '😀', ' ', '0'}
	b := make([]byte, 0, n)
	for i := 0; len(b) < n; i++ {
		r := runes[(i*7+i/3)%len(runes)]
		if utf8.RuneLen(r) > n-len(b) {
			r = 'x'
		}
		b = utf8.AppendRune(b, r)
	}
	return b
}

// BinaryPayload returns n deterministic bytes covering every byte value.
func BinaryPayload(n int) []byte {
	b := make([]byte, n)
	x := uint32(2463534242)
	for i := range b {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b[i] = byte(x)
	}
	return b
}

// Payload is TextPayload for OpText and BinaryPayload otherwise.
func Payload(op Opcode, n int) []byte {
	if op == OpText {
		return TextPayload(n)
	}
	return BinaryPayload(n)
}
