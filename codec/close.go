package codec

import (
	"encoding/binary"

	"github.com/gobwas/ws"
)

// MaxCloseReason is the longest close reason that fits a control frame.
const MaxCloseReason = 125 - 2

// ValidCloseCode reports whether code may appear in a close frame on the
// wire (RFC 6455 section 7.4 and the IANA registry): 1000-1003, 1007-1014
// and the 3000-4999 ranges. 1004, 1005, 1006 and 1015 are reserved and never
// sent; everything below 1000 or in 1016-2999 is undefined.
func ValidCloseCode(code ws.StatusCode) bool {
	switch {
	case code >= 1000 && code <= 1003:
		return true
	case code >= 1007 && code <= 1014:
		return true
	case code >= 3000 && code <= 4999:
		return true
	}
	return false
}

// ParseClosePayload validates an unmasked close frame payload and returns
// its code and reason. An empty payload is valid and yields CloseNoStatus.
// A 1-byte payload, an invalid code or a reason that is not UTF-8 is a
// protocol error (1002, or 1007 for the reason). The reason aliases p.
func ParseClosePayload(p []byte) (code ws.StatusCode, reason []byte, err error) {
	switch {
	case len(p) == 0:
		return CloseNoStatus, nil, nil
	case len(p) == 1:
		return 0, nil, protocolErr(CloseProtocolError, "close payload of 1 byte")
	}
	code = ws.StatusCode(binary.BigEndian.Uint16(p))
	if !ValidCloseCode(code) {
		return 0, nil, protocolErr(CloseProtocolError, "invalid close code")
	}
	reason = p[2:]
	if !ValidUTF8(reason) {
		return 0, nil, protocolErr(CloseInvalidPayload, "close reason is not UTF-8")
	}
	return code, reason, nil
}

// PutClosePayload writes code and reason into dst (at least 2+len(reason)
// bytes) and returns the payload size. The reason is cut to MaxCloseReason
// bytes at a rune boundary. It does not allocate.
func PutClosePayload(dst []byte, code ws.StatusCode, reason string) int {
	binary.BigEndian.PutUint16(dst, uint16(code))
	reason = TruncateUTF8(reason, MaxCloseReason)
	return 2 + copy(dst[2:], reason)
}

// AppendCloseFrame appends a whole unmasked close frame to dst. If code is
// CloseNoStatus the frame has an empty payload.
func AppendCloseFrame(dst []byte, code ws.StatusCode, reason string) []byte {
	var buf [MaxHeaderSize + 125]byte
	payload := buf[MaxHeaderSize:]
	n := 0
	if code != CloseNoStatus && code != 0 {
		n = PutClosePayload(payload, code, reason)
	}
	h := ws.Header{Fin: true, OpCode: ws.OpClose, Length: int64(n)}
	hn := PutHeader(buf[:], h)
	dst = append(dst, buf[:hn]...)
	return append(dst, payload[:n]...)
}

// TruncateUTF8 cuts s to at most max bytes without splitting a rune.
func TruncateUTF8(s string, max int) string {
	if len(s) <= max {
		return s
	}
	for max > 0 && s[max]&0xc0 == 0x80 {
		max--
	}
	return s[:max]
}
