package proxyproto

import (
	"bytes"
	"net/netip"
)

// Version 1 is one line of text:
//
//	"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n"
//	"PROXY TCP6 2001:db8::1 2001:db8::2 56324 443\r\n"
//	"PROXY UNKNOWN\r\n" (anything between UNKNOWN and CRLF is ignored)
//
// with exactly one space between fields, decimal ports without leading
// zeros, addresses of the named family, and CRLF within MaxV1Len bytes.
// The line is checked as it arrives: a prefix that no valid line starts
// with is malformed at once, except that an IPv6 address is only checked
// for its characters and length until it is complete.

// Longest address texts: "255.255.255.255" and
// "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255".
const (
	maxIPv4Text = 15
	maxIPv6Text = 45
)

// parseV1 parses p, which starts with the whole v1 signature.
func parseV1(p []byte) (Header, int, error) {
	line := p[:min(len(p), MaxV1Len)]
	lf := bytes.IndexByte(line, '\n')
	if lf < 0 {
		if len(line) == MaxV1Len {
			return Header{}, 0, malformed("v1: no CRLF within %d bytes", MaxV1Len)
		}
		// A CR at the end may be the line's: then the fields before it
		// must be whole.
		body, crSeen := line[len(v1Signature):], false
		if n := len(body); n > 0 && body[n-1] == '\r' {
			body, crSeen = body[:n-1], true
		}
		if _, err := parseV1Fields(body, crSeen); err != nil {
			return Header{}, 0, err
		}
		return Header{}, 0, ErrNeedMore
	}
	if line[lf-1] != '\r' {
		return Header{}, 0, malformed("v1: LF without CR")
	}
	h, err := parseV1Fields(line[len(v1Signature):lf-1], true)
	if err != nil {
		return Header{}, 0, err
	}
	return h, lf + 1, nil
}

// v1 field kinds after the protocol, in line order.
type v1Field uint8

const (
	sourceAddr v1Field = iota
	destinationAddr
	sourcePort
	destinationPort
	numV1Fields
)

var v1FieldNames = [numV1Fields]string{"source address", "destination address", "source port", "destination port"}

// parseV1Fields parses the line between the signature and CRLF. With
// whole false, body is what has arrived so far, and parseV1Fields only
// says whether a valid line can start with it (the Header is then zero).
func parseV1Fields(body []byte, whole bool) (Header, error) {
	proto, rest, spaced := cutField(body)
	if !spaced && !whole {
		if isPrefix(proto, "TCP4") || isPrefix(proto, "TCP6") || isPrefix(proto, "UNKNOWN") {
			return Header{}, nil
		}
		return Header{}, malformed("v1: unknown protocol %q", proto)
	}
	var v6 bool
	switch string(proto) {
	case "UNKNOWN":
		return Header{Version: 1, Command: CommandLocal}, nil
	case "TCP4":
	case "TCP6":
		v6 = true
	default:
		return Header{}, malformed("v1: unknown protocol %q", proto)
	}
	if !spaced {
		return Header{}, malformed("v1: %s without addresses", proto)
	}
	var (
		addrs [2]netip.Addr
		ports [2]uint16
	)
	for f := range numV1Fields {
		field, next, spaced := cutField(rest)
		rest = next
		last := f == destinationPort
		if !spaced && !whole {
			if !v1FieldCanStart(f, field, v6) {
				return Header{}, malformed("v1: bad %s %q", v1FieldNames[f], field)
			}
			return Header{}, nil
		}
		var ok bool
		switch f {
		case sourceAddr, destinationAddr:
			if v6 {
				addrs[f], ok = parseIPv6(field)
			} else {
				addrs[f], ok = parseIPv4(field, false)
			}
		case sourcePort, destinationPort:
			ports[f-sourcePort], ok = parsePort(field, false)
		}
		switch {
		case !ok:
			return Header{}, malformed("v1: bad %s %q", v1FieldNames[f], field)
		case spaced && last:
			return Header{}, malformed("v1: text after the destination port")
		case !spaced && !last:
			return Header{}, malformed("v1: line ends before the %s", v1FieldNames[f+1])
		}
	}
	return Header{
		Version:     1,
		Command:     CommandProxy,
		Source:      netip.AddrPortFrom(addrs[0], ports[0]),
		Destination: netip.AddrPortFrom(addrs[1], ports[1]),
	}, nil
}

// v1FieldCanStart reports whether a valid field of kind f can start with
// partial, which has not ended yet.
func v1FieldCanStart(f v1Field, partial []byte, v6 bool) bool {
	switch {
	case f == sourcePort || f == destinationPort:
		_, ok := parsePort(partial, true)
		return ok
	case !v6:
		_, ok := parseIPv4(partial, true)
		return ok
	}
	if len(partial) > maxIPv6Text {
		return false
	}
	for _, c := range partial {
		if fromHex(c) < 0 && c != ':' && c != '.' {
			return false
		}
	}
	return true
}

// cutField splits b at its first space: field is what precedes it, and
// spaced reports whether there was one.
func cutField(b []byte) (field, rest []byte, spaced bool) {
	if i := bytes.IndexByte(b, ' '); i >= 0 {
		return b[:i], b[i+1:], true
	}
	return b, nil, false
}

// isPrefix reports whether b is a prefix of s.
func isPrefix(b []byte, s string) bool {
	return len(b) <= len(s) && string(b) == s[:len(b)]
}

// parsePort parses a decimal port in 0..65535 with no leading zero. With
// partial, it only reports whether a port can start with b.
func parsePort(b []byte, partial bool) (uint16, bool) {
	if len(b) == 0 {
		return 0, partial
	}
	if len(b) > 5 || (b[0] == '0' && len(b) > 1) {
		return 0, false
	}
	v := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + int(c-'0')
	}
	if v > 65535 {
		return 0, false
	}
	return uint16(v), true
}

// parseIPv4 parses a dotted-quad IPv4 address, each part in 0..255 with
// no leading zero (as net/netip does: a leading zero could mean octal to
// someone). With partial, it only reports whether an address can start
// with b.
func parseIPv4(b []byte, partial bool) (netip.Addr, bool) {
	if len(b) > maxIPv4Text {
		return netip.Addr{}, false
	}
	var ip [4]byte
	part, digits, value := 0, 0, 0
	for _, c := range b {
		switch {
		case c >= '0' && c <= '9':
			if digits == 1 && value == 0 {
				return netip.Addr{}, false
			}
			value = value*10 + int(c-'0')
			digits++
			if value > 255 {
				return netip.Addr{}, false
			}
		case c == '.':
			if digits == 0 || part == 3 {
				return netip.Addr{}, false
			}
			ip[part] = byte(value)
			part, digits, value = part+1, 0, 0
		default:
			return netip.Addr{}, false
		}
	}
	if partial {
		return netip.Addr{}, true
	}
	if part != 3 || digits == 0 {
		return netip.Addr{}, false
	}
	ip[3] = byte(value)
	return netip.AddrFrom4(ip), true
}

// parseIPv6 parses an IPv6 address in RFC 4291 text form, without a zone:
// up to eight groups of one to four hex digits, at most one "::" standing
// for one or more zero groups, and optionally a dotted-quad IPv4 address
// as the last 32 bits. It accepts what net/netip.ParseAddr accepts
// (checked by FuzzParseIPv6), without net/netip's allocation of the
// string to parse.
func parseIPv6(b []byte) (netip.Addr, bool) {
	if len(b) > maxIPv6Text {
		return netip.Addr{}, false
	}
	var ip [16]byte
	ellipsis := -1 // where "::" stands in ip, or -1
	if len(b) >= 2 && b[0] == ':' && b[1] == ':' {
		ellipsis = 0
		b = b[2:]
		if len(b) == 0 {
			return netip.IPv6Unspecified(), true
		}
	}
	i := 0 // bytes of ip filled
	for i < 16 {
		digits, group := 0, 0
		for ; digits < len(b); digits++ {
			d := fromHex(b[digits])
			if d < 0 {
				break
			}
			if digits == 4 {
				return netip.Addr{}, false
			}
			group = group<<4 | d
		}
		if digits == 0 {
			return netip.Addr{}, false
		}
		if digits < len(b) && b[digits] == '.' {
			// The digits just read start an IPv4 address, which must
			// fill the last 32 bits.
			if (ellipsis < 0 && i != 12) || i > 12 {
				return netip.Addr{}, false
			}
			v4, ok := parseIPv4(b, false)
			if !ok {
				return netip.Addr{}, false
			}
			a4 := v4.As4()
			copy(ip[i:], a4[:])
			i += 4
			b = nil
			break
		}
		ip[i], ip[i+1] = byte(group>>8), byte(group)
		i += 2
		b = b[digits:]
		if len(b) == 0 {
			break
		}
		if b[0] != ':' || len(b) == 1 {
			return netip.Addr{}, false
		}
		b = b[1:]
		if b[0] == ':' {
			if ellipsis >= 0 {
				return netip.Addr{}, false
			}
			ellipsis = i
			b = b[1:]
			if len(b) == 0 {
				break
			}
		}
	}
	if len(b) != 0 {
		return netip.Addr{}, false
	}
	if i < 16 {
		if ellipsis < 0 {
			return netip.Addr{}, false
		}
		n := 16 - i
		copy(ip[ellipsis+n:], ip[ellipsis:i])
		clear(ip[ellipsis : ellipsis+n])
	} else if ellipsis >= 0 {
		// "::" must stand for at least one group.
		return netip.Addr{}, false
	}
	return netip.AddrFrom16(ip), true
}

// fromHex is the value of hex digit c, or -1.
func fromHex(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'f':
		return int(c - 'a' + 10)
	case c >= 'A' && c <= 'F':
		return int(c - 'A' + 10)
	}
	return -1
}
