package codec

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
)

// NewClientKey returns a fresh random Sec-WebSocket-Key.
func NewClientKey() string {
	var raw [16]byte
	_, _ = rand.Read(raw[:]) // crypto/rand never fails on Linux
	return base64.StdEncoding.EncodeToString(raw[:])
}

// ClientRequest describes the upgrade request a client sends to a server.
type ClientRequest struct {
	Host      string        // Host header (host:port)
	URI       string        // request target; "" means "/"
	Key       string        // from NewClientKey
	Protocols []string      // subprotocols to offer, preference order
	Header    []HeaderField // extra header lines
}

// AppendClientRequest appends the HTTP upgrade request for r to dst.
func AppendClientRequest(dst []byte, r *ClientRequest) []byte {
	uri := r.URI
	if uri == "" {
		uri = "/"
	}
	dst = append(dst, "GET "...)
	dst = append(dst, uri...)
	dst = append(dst, " HTTP/1.1\r\nHost: "...)
	dst = append(dst, r.Host...)
	dst = append(dst, "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: "...)
	dst = append(dst, r.Key...)
	dst = append(dst, "\r\n"...)
	for i, p := range r.Protocols {
		if i == 0 {
			dst = append(dst, "Sec-WebSocket-Protocol: "...)
		} else {
			dst = append(dst, ", "...)
		}
		dst = append(dst, p...)
		if i == len(r.Protocols)-1 {
			dst = append(dst, "\r\n"...)
		}
	}
	for _, f := range r.Header {
		dst = append(dst, f.Name...)
		dst = append(dst, ": "...)
		dst = append(dst, f.Value...)
		dst = append(dst, "\r\n"...)
	}
	return append(dst, "\r\n"...)
}

// ErrBadHandshakeResponse wraps every reason a server's answer to an upgrade
// request is refused.
var ErrBadHandshakeResponse = errors.New("codec: bad handshake response")

// ParseClientResponse checks a server's complete response header block (as
// delimited by HeaderScanner) to the request r: status 101, Upgrade and
// Connection tokens, the Sec-WebSocket-Accept matching r.Key, no extension,
// and a subprotocol only if it was offered. It returns the subprotocol and,
// for a non-101 answer, the HTTP status.
func ParseClientResponse(block []byte, r *ClientRequest) (protocol string, status int, err error) {
	lineEnd := bytes.Index(block, crlf)
	if lineEnd < 0 {
		return "", 0, fmt.Errorf("%w: no status line", ErrBadHandshakeResponse)
	}
	line := block[:lineEnd]
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.1 ")) || (len(line) > 12 && line[12] != ' ') {
		return "", 0, fmt.Errorf("%w: malformed status line %q", ErrBadHandshakeResponse, line)
	}
	for _, c := range line[9:12] {
		if c < '0' || c > '9' {
			return "", 0, fmt.Errorf("%w: malformed status line %q", ErrBadHandshakeResponse, line)
		}
		status = status*10 + int(c-'0')
	}
	if status != 101 {
		return "", status, fmt.Errorf("%w: status %d", ErrBadHandshakeResponse, status)
	}
	var upgrade, connection, accepted bool
	var want [28]byte
	AcceptKey(&want, r.Key)
	rest := block[lineEnd+2:]
	for {
		end := bytes.Index(rest, crlf)
		if end < 0 {
			return "", status, fmt.Errorf("%w: unterminated header", ErrBadHandshakeResponse)
		}
		hl := rest[:end]
		rest = rest[end+2:]
		if len(hl) == 0 {
			break
		}
		name, value, ok := splitHeaderLine(hl)
		if !ok {
			return "", status, fmt.Errorf("%w: malformed header line", ErrBadHandshakeResponse)
		}
		switch {
		case equalFold(name, "Upgrade"):
			upgrade = upgrade || hasToken(value, "websocket")
		case equalFold(name, "Connection"):
			connection = connection || hasToken(value, "upgrade")
		case equalFold(name, "Sec-WebSocket-Accept"):
			accepted = bytes.Equal(value, want[:])
		case equalFold(name, "Sec-WebSocket-Extensions"):
			return "", status, fmt.Errorf("%w: server chose an extension that was not offered", ErrBadHandshakeResponse)
		case equalFold(name, "Sec-WebSocket-Protocol"):
			protocol = string(value)
		}
	}
	switch {
	case !upgrade:
		return "", status, fmt.Errorf("%w: missing Upgrade: websocket", ErrBadHandshakeResponse)
	case !connection:
		return "", status, fmt.Errorf("%w: missing Connection: upgrade", ErrBadHandshakeResponse)
	case !accepted:
		return "", status, fmt.Errorf("%w: wrong or missing Sec-WebSocket-Accept", ErrBadHandshakeResponse)
	case protocol != "" && SelectProtocol([]string{protocol}, r.Protocols) == "":
		return "", status, fmt.Errorf("%w: subprotocol %q was not offered", ErrBadHandshakeResponse, protocol)
	}
	return protocol, status, nil
}
