package proxyproto

// The signatures a header starts with. The first bytes tell them apart
// ('P' or CR), and a byte that matches neither ends the matter.
const (
	v1Signature = "PROXY "
	v2Signature = "\r\n\r\n\x00\r\nQUIT\n"
)

// Parse parses the PROXY protocol header at the start of p.
//
// With a whole header at the start of p, it returns the header and its
// length n: the caller discards n bytes, and the client's own bytes
// follow. Otherwise it returns one of:
//
//   - ErrNeedMore: p is the start of a header but not all of it (an empty
//     p included). Nothing was consumed; call again with more bytes.
//     Never returned once len(p) >= MaxLen, nor for a v1 line past
//     MaxV1Len bytes without its CRLF, which is malformed.
//   - ErrNotProxy: p cannot start a header. This is decided at the first
//     byte that matches neither signature, so a client that speaks first
//     ("GET / HTTP/1.1", a TLS ClientHello) is refused at its first byte
//     or two, not waited for.
//   - an error wrapping ErrMalformed: p starts with a signature, and what
//     follows breaks the spec. A broken field is reported as soon as its
//     bytes show it (a v2 version or command, a v1 port of six digits),
//     not only once the whole header is in.
//
// Parse keeps no reference to p and allocates only for a malformed
// header's error. Safe for concurrent use.
func Parse(p []byte) (h Header, n int, err error) {
	if len(p) == 0 {
		return Header{}, 0, ErrNeedMore
	}
	var signature string
	switch p[0] {
	case v1Signature[0]:
		signature = v1Signature
	case v2Signature[0]:
		signature = v2Signature
	default:
		return Header{}, 0, ErrNotProxy
	}
	if k := min(len(p), len(signature)); string(p[:k]) != signature[:k] {
		return Header{}, 0, ErrNotProxy
	}
	if len(p) < len(signature) {
		return Header{}, 0, ErrNeedMore
	}
	if signature == v1Signature {
		return parseV1(p)
	}
	return parseV2(p)
}
