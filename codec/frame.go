package codec

import (
	"encoding/binary"
	"math"

	"github.com/gobwas/ws"
)

// MaxHeaderSize is the largest frame header: 2 + 8 (length) + 4 (mask).
const MaxHeaderSize = ws.MaxHeaderSize

// Role says which end of a connection is parsing: a server expects masked
// frames, a client expects unmasked ones.
type Role uint8

const (
	RoleServer Role = iota + 1
	RoleClient
)

// ParseHeader parses one frame header from the start of p.
//
// It returns the header and its encoded size. If p holds only part of the
// header it returns ErrNeedMore and consumes nothing. It checks what can be
// checked from the header alone: reserved opcodes, RSV bits (no extension is
// ever negotiated), control frames that are fragmented or longer than 125
// bytes, the mask bit for role, a 64-bit length with its top bit set, and a
// declared payload above maxPayload (close 1009, refused before anything is
// allocated). maxPayload <= 0 means no limit. Fragmentation order is the
// caller's business (see MessageState). It does not allocate.
func ParseHeader(p []byte, role Role, maxPayload int64) (h ws.Header, n int, err error) {
	if len(p) < 2 {
		return h, 0, ErrNeedMore
	}
	b0, b1 := p[0], p[1]
	h.Fin = b0&0x80 != 0
	h.Rsv = (b0 & 0x70) >> 4
	h.OpCode = ws.OpCode(b0 & 0x0f)
	h.Masked = b1&0x80 != 0
	n = 2
	switch l := b1 & 0x7f; l {
	case 126:
		if len(p) < n+2 {
			return h, 0, ErrNeedMore
		}
		h.Length = int64(binary.BigEndian.Uint16(p[n:]))
		n += 2
	case 127:
		if len(p) < n+8 {
			return h, 0, ErrNeedMore
		}
		u := binary.BigEndian.Uint64(p[n:])
		if u>>63 != 0 {
			return h, 0, protocolErr(CloseProtocolError, "payload length has its top bit set")
		}
		h.Length = int64(u)
		n += 8
	default:
		h.Length = int64(l)
	}
	if h.Masked {
		if len(p) < n+4 {
			return h, 0, ErrNeedMore
		}
		copy(h.Mask[:], p[n:n+4])
		n += 4
	}
	if err := checkHeader(h, role); err != nil {
		return h, 0, err
	}
	if maxPayload > 0 && h.Length > maxPayload && h.OpCode.IsData() {
		return h, 0, protocolErr(CloseMessageTooBig, "message too big")
	}
	return h, n, nil
}

func checkHeader(h ws.Header, role Role) error {
	state := ws.StateServerSide
	if role == RoleClient {
		state = ws.StateClientSide
	}
	// Fragmentation is tracked by MessageState: pretend we are inside a
	// message for continuations so CheckHeader only judges the frame itself.
	if h.OpCode == ws.OpContinuation {
		state = state.Set(ws.StateFragmented)
	}
	switch err := ws.CheckHeader(h, state); err {
	case nil:
		return nil
	case ws.ErrProtocolOpCodeReserved:
		return protocolErr(CloseProtocolError, "reserved opcode")
	case ws.ErrProtocolControlPayloadOverflow:
		return protocolErr(CloseProtocolError, "control frame over 125 bytes")
	case ws.ErrProtocolControlNotFinal:
		return protocolErr(CloseProtocolError, "fragmented control frame")
	case ws.ErrProtocolNonZeroRsv:
		return protocolErr(CloseProtocolError, "RSV bits set without an extension")
	case ws.ErrProtocolMaskRequired:
		return protocolErr(CloseProtocolError, "unmasked client frame")
	case ws.ErrProtocolMaskUnexpected:
		return protocolErr(CloseProtocolError, "masked server frame")
	default:
		return protocolErr(CloseProtocolError, err.Error())
	}
}

// HeaderSize is the encoded size of h.
func HeaderSize(h ws.Header) int { return ws.HeaderSize(h) }

// PutHeader encodes h at the start of dst and returns the number of bytes
// written. dst must hold at least HeaderSize(h) bytes (MaxHeaderSize always
// does). It does not allocate.
func PutHeader(dst []byte, h ws.Header) int {
	b0 := byte(h.OpCode) | h.Rsv<<4
	if h.Fin {
		b0 |= 0x80
	}
	var b1 byte
	if h.Masked {
		b1 = 0x80
	}
	dst[0] = b0
	n := 2
	switch {
	case h.Length <= 125:
		dst[1] = b1 | byte(h.Length)
	case h.Length <= 0xffff:
		dst[1] = b1 | 126
		binary.BigEndian.PutUint16(dst[2:], uint16(h.Length))
		n = 4
	default:
		dst[1] = b1 | 127
		binary.BigEndian.PutUint64(dst[2:], uint64(h.Length))
		n = 10
	}
	if h.Masked {
		copy(dst[n:], h.Mask[:])
		n += 4
	}
	return n
}

// Mask XORs p with mask, starting at byte offset of the frame payload; the
// same call unmasks. Use offset to continue across split payload pieces.
func Mask(p []byte, mask [4]byte, offset int) { ws.Cipher(p, mask, offset) }

// MessageState tracks fragmentation of the data messages on one direction
// of a connection: whether a message is open, its opcode and size so far.
// The zero value is ready to use. It is owned by whoever owns the connection.
type MessageState struct {
	open   bool      // a fragmented data message has started and not ended
	opcode ws.OpCode // OpText or OpBinary of the open message
	size   int64     // payload bytes of the open message so far
}

// Open reports whether a fragmented message is in progress.
func (m *MessageState) Open() bool { return m.open }

// OpCode is the opcode of the message in progress (or of the last one).
func (m *MessageState) OpCode() ws.OpCode { return m.opcode }

// Size is the payload size of the message in progress so far.
func (m *MessageState) Size() int64 { return m.size }

// Next checks the data frame h against the message in progress and advances
// the state: a continuation needs an open message, a new text or binary frame
// needs none, and the whole message may not pass maxMessage bytes
// (maxMessage <= 0: no limit). Control frames pass through untouched.
// On error the state is unchanged.
func (m *MessageState) Next(h ws.Header, maxMessage int64) error {
	if h.OpCode.IsControl() {
		return nil
	}
	if h.OpCode == ws.OpContinuation {
		if !m.open {
			return protocolErr(CloseProtocolError, "continuation without a message start")
		}
	} else if m.open {
		return protocolErr(CloseProtocolError, "new data frame inside a fragmented message")
	}
	size := h.Length
	if h.OpCode == ws.OpContinuation {
		size += m.size
	}
	if maxMessage > 0 && size > maxMessage {
		return protocolErr(CloseMessageTooBig, "message too big")
	}
	if h.OpCode != ws.OpContinuation {
		m.opcode = h.OpCode
	}
	m.size = size
	m.open = !h.Fin
	return nil
}

// SplitFrame finds the first whole frame at the start of p: its header,
// the header's size and the frame's total size (header plus payload). If
// p holds less than a whole frame it returns ErrNeedMore with total set to
// how many bytes (from the start of p) to wait for before calling again:
// the whole frame once its header is complete (its length was checked
// against maxPayload first, so nothing past the limit is ever waited
// for), else one more byte than p holds. A declared
// length that cannot be buffered at all (header plus payload above the
// largest int) is a 1009 even without a limit. Other errors are
// ParseHeader's. It does not allocate.
func SplitFrame(p []byte, role Role, maxPayload int64) (h ws.Header, hn, total int, err error) {
	h, hn, err = ParseHeader(p, role, maxPayload)
	if err != nil {
		if err == ErrNeedMore {
			return h, 0, len(p) + 1, err
		}
		return h, 0, 0, err
	}
	if h.Length > int64(math.MaxInt-hn) {
		return h, 0, 0, protocolErr(CloseMessageTooBig, "frame too big")
	}
	total = hn + int(h.Length)
	if len(p) < total {
		return h, hn, total, ErrNeedMore
	}
	return h, hn, total, nil
}
