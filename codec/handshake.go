package codec

import (
	"bytes"
	"crypto/sha1"
	"encoding/base64"
	"strconv"
	"strings"
)

// DefaultMaxHeaderBytes bounds an upgrade request's header block (431 past it).
const DefaultMaxHeaderBytes = 8 << 10

// acceptGUID is the fixed string of RFC 6455 section 1.3.
const acceptGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// HeaderField is one request header line as received (name case kept).
type HeaderField struct {
	Name  string
	Value string
}

// UpgradeRequest is a validated WebSocket upgrade request. It owns copies of
// what it holds, so it outlives the buffer it was parsed from.
type UpgradeRequest struct {
	URI       string        // request target: path and query, as sent
	Host      string        // Host header
	Key       string        // Sec-WebSocket-Key (24 base64 characters)
	Origin    string        // Origin header, "" if absent
	Protocols []string      // offered subprotocols, client order
	Header    []HeaderField // every header line, in order
}

// Get returns the value of the first header named name (any case), or "".
func (r *UpgradeRequest) Get(name string) string {
	for _, f := range r.Header {
		if strings.EqualFold(f.Name, name) {
			return f.Value
		}
	}
	return ""
}

// HeaderScanner finds the end of an HTTP header block that arrives in any
// number of pieces. It remembers how far it has looked so each byte is
// scanned about once, however the input is split. The zero value is ready;
// one scanner serves one header block.
type HeaderScanner struct {
	scanned int // bytes already known not to hold the end marker
}

// Scan looks for the blank line ending the header block at the start of p
// (p is everything received so far, from the first byte of the request).
// It returns the block's length including the final CRLFCRLF; bytes after
// it (frames sent with the request) belong to the caller. Before the end
// arrives it returns ErrNeedMore, and once max bytes have passed without an
// end it returns a 431 HandshakeError.
func (s *HeaderScanner) Scan(p []byte, max int) (int, error) {
	if max <= 0 {
		max = DefaultMaxHeaderBytes
	}
	from := s.scanned - 3
	if from < 0 {
		from = 0
	}
	limit := len(p)
	if limit > max {
		limit = max
	}
	if i := bytes.Index(p[from:limit], crlfcrlf); i >= 0 {
		return from + i + 4, nil
	}
	s.scanned = limit
	if len(p) >= max {
		return 0, &HandshakeError{Status: 431, Reason: "request header block too large"}
	}
	return 0, ErrNeedMore
}

var crlfcrlf = []byte("\r\n\r\n")

// ParseUpgrade validates a complete request header block (as delimited by
// HeaderScanner) as a WebSocket upgrade (RFC 6455 section 4.2.1). A refusal
// is a *HandshakeError: 405 for a method other than GET, 426 (with
// Sec-WebSocket-Version: 13) for another protocol version, 400 for anything
// else malformed.
func ParseUpgrade(block []byte) (*UpgradeRequest, error) {
	lineEnd := bytes.Index(block, crlf)
	if lineEnd < 0 {
		return nil, handshakeErr(400, "no request line")
	}
	method, uri, version, ok := splitRequestLine(block[:lineEnd])
	if !ok {
		return nil, handshakeErr(400, "malformed request line")
	}
	if string(method) != "GET" {
		if !isToken(method) {
			return nil, handshakeErr(400, "malformed method")
		}
		return nil, &HandshakeError{Status: 405, Reason: "method not allowed", Header: "Allow: GET\r\n"}
	}
	if string(version) != "HTTP/1.1" {
		return nil, handshakeErr(400, "HTTP/1.1 required")
	}
	if len(uri) == 0 || uri[0] != '/' {
		return nil, handshakeErr(400, "request target must be a path")
	}
	req := &UpgradeRequest{URI: string(uri)}
	var (
		haveHost, haveKey, haveUpgrade, haveConnUpgrade bool
		version13, haveVersion                          bool
	)
	rest := block[lineEnd+2:]
	for {
		end := bytes.Index(rest, crlf)
		if end < 0 {
			return nil, handshakeErr(400, "unterminated header line")
		}
		line := rest[:end]
		rest = rest[end+2:]
		if len(line) == 0 {
			break
		}
		name, value, ok := splitHeaderLine(line)
		if !ok {
			return nil, handshakeErr(400, "malformed header line")
		}
		f := HeaderField{Name: string(name), Value: string(value)}
		req.Header = append(req.Header, f)
		switch {
		case equalFold(name, "Host"):
			if haveHost {
				return nil, handshakeErr(400, "duplicate Host")
			}
			haveHost, req.Host = true, f.Value
		case equalFold(name, "Upgrade"):
			haveUpgrade = haveUpgrade || hasToken(value, "websocket")
		case equalFold(name, "Connection"):
			haveConnUpgrade = haveConnUpgrade || hasToken(value, "upgrade")
		case equalFold(name, "Sec-WebSocket-Key"):
			if haveKey {
				return nil, handshakeErr(400, "duplicate Sec-WebSocket-Key")
			}
			haveKey, req.Key = true, f.Value
		case equalFold(name, "Sec-WebSocket-Version"):
			if haveVersion {
				return nil, handshakeErr(400, "duplicate Sec-WebSocket-Version")
			}
			haveVersion, version13 = true, string(value) == "13"
		case equalFold(name, "Sec-WebSocket-Protocol"):
			req.Protocols = appendTokens(req.Protocols, f.Value)
		case equalFold(name, "Origin"):
			req.Origin = f.Value
		}
	}
	switch {
	case !haveHost || req.Host == "":
		return nil, handshakeErr(400, "missing Host")
	case !validHost(req.Host):
		return nil, handshakeErr(400, "malformed Host")
	case !haveUpgrade:
		return nil, handshakeErr(400, "missing Upgrade: websocket")
	case !haveConnUpgrade:
		return nil, handshakeErr(400, "missing Connection: upgrade")
	case !haveVersion:
		return nil, handshakeErr(400, "missing Sec-WebSocket-Version")
	case !version13:
		return nil, &HandshakeError{Status: 426, Reason: "unsupported WebSocket version", Header: "Sec-WebSocket-Version: 13\r\n"}
	case !haveKey || !validKey(req.Key):
		return nil, handshakeErr(400, "missing or malformed Sec-WebSocket-Key")
	}
	return req, nil
}

// SelectProtocol picks the first of supported (server preference) that the
// client offered, or "" when none matches or none is configured.
func SelectProtocol(supported, offered []string) string {
	for _, s := range supported {
		for _, o := range offered {
			if s == o {
				return s
			}
		}
	}
	return ""
}

// AcceptKey computes Sec-WebSocket-Accept for key into dst and returns it.
// It does not allocate.
func AcceptKey(dst *[28]byte, key string) []byte {
	// Keys the server validated are 24 bytes and fit the stack buffer; a
	// client checking an odd key gets a correct (if allocating) answer.
	var buf [24 + len(acceptGUID)]byte
	src := append(append(buf[:0], key...), acceptGUID...)
	sum := sha1.Sum(src)
	base64.StdEncoding.Encode(dst[:], sum[:])
	return dst[:]
}

// AppendAccept appends the 101 response for key, with the chosen
// subprotocol if any. No extension is ever accepted (permessage-deflate
// offers are declined by leaving Sec-WebSocket-Extensions out).
func AppendAccept(dst []byte, key, protocol string) []byte {
	var accept [28]byte
	dst = append(dst, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: "...)
	dst = append(dst, AcceptKey(&accept, key)...)
	dst = append(dst, "\r\n"...)
	if protocol != "" {
		dst = append(dst, "Sec-WebSocket-Protocol: "...)
		dst = append(dst, protocol...)
		dst = append(dst, "\r\n"...)
	}
	return append(dst, "\r\n"...)
}

// AppendHTTPError appends a complete "Connection: close" HTTP response for a
// refused handshake, with the reason as a plain-text body.
func AppendHTTPError(dst []byte, e *HandshakeError) []byte {
	dst = append(dst, "HTTP/1.1 "...)
	dst = strconv.AppendInt(dst, int64(e.Status), 10)
	dst = append(dst, ' ')
	dst = append(dst, StatusText(e.Status)...)
	dst = append(dst, "\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\nContent-Length: "...)
	dst = strconv.AppendInt(dst, int64(len(e.Reason)+1), 10)
	dst = append(dst, "\r\n"...)
	dst = append(dst, e.Header...)
	dst = append(dst, "\r\n"...)
	dst = append(dst, e.Reason...)
	return append(dst, '\n')
}

// StatusText is the reason phrase for the statuses a handshake can end in.
func StatusText(status int) string {
	switch status {
	case 101:
		return "Switching Protocols"
	case 400:
		return "Bad Request"
	case 401:
		return "Unauthorized"
	case 403:
		return "Forbidden"
	case 404:
		return "Not Found"
	case 405:
		return "Method Not Allowed"
	case 408:
		return "Request Timeout"
	case 426:
		return "Upgrade Required"
	case 429:
		return "Too Many Requests"
	case 431:
		return "Request Header Fields Too Large"
	case 500:
		return "Internal Server Error"
	case 502:
		return "Bad Gateway"
	case 503:
		return "Service Unavailable"
	}
	return "Error"
}

var crlf = []byte("\r\n")

func splitRequestLine(line []byte) (method, uri, version []byte, ok bool) {
	sp1 := bytes.IndexByte(line, ' ')
	if sp1 <= 0 {
		return nil, nil, nil, false
	}
	sp2 := bytes.IndexByte(line[sp1+1:], ' ')
	if sp2 <= 0 {
		return nil, nil, nil, false
	}
	sp2 += sp1 + 1
	method, uri, version = line[:sp1], line[sp1+1:sp2], line[sp2+1:]
	for _, c := range uri {
		if c <= ' ' || c == 0x7f {
			return nil, nil, nil, false
		}
	}
	return method, uri, version, len(version) > 0
}

// splitHeaderLine splits "Name: value" (RFC 9112 section 5): a token name,
// no space before the colon, optional whitespace around the value, no
// control characters in it. A line starting with whitespace (obsolete line
// folding) is refused.
func splitHeaderLine(line []byte) (name, value []byte, ok bool) {
	colon := bytes.IndexByte(line, ':')
	if colon <= 0 || !isToken(line[:colon]) {
		return nil, nil, false
	}
	value = bytes.Trim(line[colon+1:], " \t")
	for _, c := range value {
		if (c < ' ' && c != '\t') || c == 0x7f {
			return nil, nil, false
		}
	}
	return line[:colon], value, true
}

func isToken(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if c <= ' ' || c >= 0x7f || strings.IndexByte("\"(),/:;<=>?@[\\]{}", c) >= 0 {
			return false
		}
	}
	return true
}

func equalFold(b []byte, s string) bool {
	return len(b) == len(s) && strings.EqualFold(string(b), s)
}

// hasToken reports whether a comma-separated header value holds token (any case).
func hasToken(value []byte, token string) bool {
	for len(value) > 0 {
		var part []byte
		if i := bytes.IndexByte(value, ','); i >= 0 {
			part, value = value[:i], value[i+1:]
		} else {
			part, value = value, nil
		}
		if equalFold(bytes.Trim(part, " \t"), token) {
			return true
		}
	}
	return false
}

func appendTokens(dst []string, value string) []string {
	for _, part := range strings.Split(value, ",") {
		if part = strings.Trim(part, " \t"); part != "" {
			dst = append(dst, part)
		}
	}
	return dst
}

// validHost reports whether a Host header value is uri-host [":" port]
// (RFC 9110 section 7.2, RFC 3986 section 3.2.2): an IP literal in
// brackets, or a reg-name or IPv4 address of unreserved, sub-delim and
// percent-encoded characters, then an optional decimal port.
func validHost(h string) bool {
	host, port := h, ""
	if strings.HasPrefix(h, "[") {
		end := strings.IndexByte(h, ']')
		if end < 2 {
			return false
		}
		for _, c := range []byte(h[1:end]) {
			if !isHexDigit(c) && c != ':' && c != '.' {
				return false
			}
		}
		host, port = "", h[end+1:]
		if port != "" && port[0] != ':' {
			return false
		}
	} else if i := strings.LastIndexByte(h, ':'); i >= 0 {
		host, port = h[:i], h[i:]
	}
	if port != "" {
		if len(port) == 1 || len(port) > 6 {
			return false
		}
		for _, c := range []byte(port[1:]) {
			if c < '0' || c > '9' {
				return false
			}
		}
	}
	for i := 0; i < len(host); i++ {
		c := host[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("-._~!$&'()*+,;=", c) >= 0:
		case c == '%' && i+2 < len(host) && isHexDigit(host[i+1]) && isHexDigit(host[i+2]):
			i += 2
		default:
			return false
		}
	}
	return true
}

func isHexDigit(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func validKey(key string) bool {
	if len(key) != 24 {
		return false
	}
	var raw [18]byte
	n, err := base64.StdEncoding.Decode(raw[:], []byte(key))
	return err == nil && n == 16
}

// ValidToken reports whether s is an HTTP token (RFC 9110 5.6.2), the form
// of a subprotocol name (RFC 6455 4.1).
func ValidToken(s string) bool { return s != "" && isToken([]byte(s)) }
