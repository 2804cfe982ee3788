package proxyproto

import (
	"errors"
	"fmt"
	"net/netip"
)

// Sizes a caller sizes its buffers and timeouts by.
const (
	// MaxV1Len is the longest v1 line, CRLF included: the spec's worst
	// case, "PROXY UNKNOWN" with two full IPv6 addresses and ports.
	MaxV1Len = 107
	// MaxV2Body bounds what a v2 header may announce after its 16 fixed
	// bytes (addresses and TLVs). The field allows 65535; senders write a
	// few hundred bytes at most, and a bound keeps a peer from making the
	// gateway wait for, and hold, 64 KiB per connection.
	MaxV2Body = 4096
	// MaxLen is the longest header Parse accepts. A caller holding MaxLen
	// bytes never gets ErrNeedMore.
	MaxLen = 16 + MaxV2Body
)

var (
	// ErrNeedMore reports that the input is the start of a header but not
	// all of it: nothing was consumed; call again once more bytes arrived.
	ErrNeedMore = errors.New("proxyproto: need more bytes")
	// ErrNotProxy reports that the input does not start with a PROXY
	// header signature: the peer is not a proxy speaking the protocol.
	ErrNotProxy = errors.New("proxyproto: not a PROXY protocol header")
	// ErrMalformed is wrapped by the errors for a header that starts with
	// a signature but breaks the spec after it; the error says where.
	ErrMalformed = errors.New("proxyproto: malformed PROXY protocol header")
)

// malformed returns an error wrapping ErrMalformed with detail.
func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrMalformed}, args...)...)
}

// Command is what the sender of a header asks of the receiver.
type Command uint8

const (
	// CommandLocal: the connection is the proxy's own (a health check) or
	// the proxy does not know the client; the receiver keeps the
	// connection's own addresses. v1's UNKNOWN is reported as this.
	CommandLocal Command = iota
	// CommandProxy: the connection was relayed for a client, whose
	// addresses the header carries when their family is one this package
	// reads (see Header.Local).
	CommandProxy
)

func (c Command) String() string {
	switch c {
	case CommandLocal:
		return "LOCAL"
	case CommandProxy:
		return "PROXY"
	}
	return fmt.Sprintf("Command(%d)", uint8(c))
}

// Header is one parsed PROXY protocol header. It holds no reference to
// the bytes it was parsed from.
type Header struct {
	Version int     // 1 (the text line) or 2 (binary)
	Command Command // v2: as sent; v1: CommandProxy for TCP4 and TCP6, CommandLocal for UNKNOWN
	// Source is the client's address and port as the proxy saw them, and
	// Destination the address the client connected to (the proxy's
	// listener). Both are set, or both invalid (see Local). Addresses are
	// as sent: a v4-mapped IPv6 address stays one (Addr().Unmap() to
	// compare it with IPv4), and never carries a zone.
	Source, Destination netip.AddrPort
}

// Local reports whether the header names no client, so the caller keeps
// the connection's own addresses. That is the case for a LOCAL command
// (a proxy's health check), v1's UNKNOWN, and a v2 PROXY command for a
// family this package does not read: AF_UNSPEC, AF_UNIX, or datagrams,
// which the spec lets a receiver accept with the real endpoints rather
// than refuse. Refuse them yourself (Command is CommandProxy) if a relayed
// connection without a client address is not acceptable.
func (h Header) Local() bool { return !h.Source.IsValid() }
