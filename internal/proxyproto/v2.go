package proxyproto

import (
	"encoding/binary"
	"hash/crc32"
	"net/netip"
)

// Version 2 is binary: the 12-byte signature, a version and command byte,
// a family and transport byte, the length of the rest (big-endian 16
// bits), then the addresses and ports of the family and TLVs. Each fixed
// byte is checked as soon as it has arrived.

// Values of the 13th and 14th bytes.
const (
	v2Version      = 0x2 // high nibble of the 13th byte
	v2CommandLocal = 0x0 // low nibble of the 13th byte
	v2CommandProxy = 0x1

	// Families (high nibble) and transports (low nibble) of the 14th
	// byte, in the combinations the spec defines.
	unspecified = 0x00
	tcp4        = 0x11
	udp4        = 0x12
	tcp6        = 0x21
	udp6        = 0x22
	unixStream  = 0x31
	unixDgram   = 0x32
)

// v2FixedLen is the length of the signature and the three fields after it.
const v2FixedLen = 16

// tlvCRC32C is the TLV type of the header's CRC32C checksum.
const tlvCRC32C = 0x03

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// zeroChecksum stands for the CRC32C value while the header is summed. A
// package variable, never written: a local one would escape to the heap
// through crc32.Update.
var zeroChecksum [4]byte

// addressBlockLen is the length of the addresses and ports of a family
// and transport byte, and whether the spec defines the combination.
func addressBlockLen(familyTransport byte) (int, bool) {
	switch familyTransport {
	case unspecified:
		return 0, true
	case tcp4, udp4:
		return 4 + 4 + 2 + 2, true
	case tcp6, udp6:
		return 16 + 16 + 2 + 2, true
	case unixStream, unixDgram:
		return 108 + 108, true
	}
	return 0, false
}

// parseV2 parses p, which starts with the whole v2 signature.
func parseV2(p []byte) (Header, int, error) {
	const (
		versionCommand  = len(v2Signature)
		familyTransport = versionCommand + 1
		length          = familyTransport + 1
	)
	if len(p) <= versionCommand {
		return Header{}, 0, ErrNeedMore
	}
	if v := p[versionCommand] >> 4; v != v2Version {
		return Header{}, 0, malformed("v2: version %d", v)
	}
	command := p[versionCommand] & 0x0f
	if command != v2CommandLocal && command != v2CommandProxy {
		return Header{}, 0, malformed("v2: unknown command %#x", command)
	}
	// LOCAL: the spec has the receiver discard the address block, the
	// family byte included, so neither is checked.
	proxied := command == v2CommandProxy
	if len(p) <= familyTransport {
		return Header{}, 0, ErrNeedMore
	}
	ft := p[familyTransport]
	addrLen, defined := addressBlockLen(ft)
	if proxied && !defined {
		return Header{}, 0, malformed("v2: unknown family and transport 0x%02x", ft)
	}
	if len(p) < v2FixedLen {
		return Header{}, 0, ErrNeedMore
	}
	bodyLen := int(binary.BigEndian.Uint16(p[length:]))
	if bodyLen > MaxV2Body {
		return Header{}, 0, malformed("v2: %d bytes announced, more than %d", bodyLen, MaxV2Body)
	}
	if proxied && bodyLen < addrLen {
		return Header{}, 0, malformed("v2: %d bytes announced, family and transport 0x%02x need %d", bodyLen, ft, addrLen)
	}
	n := v2FixedLen + bodyLen
	if len(p) < n {
		return Header{}, 0, ErrNeedMore
	}
	h := Header{Version: 2, Command: CommandLocal}
	if !proxied {
		return h, n, nil
	}
	h.Command = CommandProxy
	if ft == unspecified {
		// The spec: "the receiver should ignore address information".
		return h, n, nil
	}
	if err := checkTLVs(p[:n], v2FixedLen+addrLen); err != nil {
		return Header{}, 0, err
	}
	a := p[v2FixedLen:n]
	switch ft {
	case tcp4:
		h.Source = netip.AddrPortFrom(netip.AddrFrom4([4]byte(a[0:4])), binary.BigEndian.Uint16(a[8:]))
		h.Destination = netip.AddrPortFrom(netip.AddrFrom4([4]byte(a[4:8])), binary.BigEndian.Uint16(a[10:]))
	case tcp6:
		h.Source = netip.AddrPortFrom(netip.AddrFrom16([16]byte(a[0:16])), binary.BigEndian.Uint16(a[32:]))
		h.Destination = netip.AddrPortFrom(netip.AddrFrom16([16]byte(a[16:32])), binary.BigEndian.Uint16(a[34:]))
	}
	// Datagrams and AF_UNIX: no address the caller can use (Local).
	return h, n, nil
}

// checkTLVs checks that header[off:] is a run of whole TLVs (a type byte,
// a big-endian 16-bit length, the value) and, if one is a CRC32C,
// that it is the checksum of the whole header (with its value zeroed).
func checkTLVs(header []byte, off int) error {
	for off < len(header) {
		if len(header)-off < 3 {
			return malformed("v2: %d bytes after the last TLV", len(header)-off)
		}
		typ := header[off]
		valueLen := int(binary.BigEndian.Uint16(header[off+1:]))
		value := off + 3
		if valueLen > len(header)-value {
			return malformed("v2: TLV 0x%02x of %d bytes overruns the header", typ, valueLen)
		}
		if typ == tlvCRC32C {
			if valueLen != 4 {
				return malformed("v2: CRC32C TLV of %d bytes", valueLen)
			}
			want := binary.BigEndian.Uint32(header[value:])
			got := crc32.Update(0, castagnoli, header[:value])
			got = crc32.Update(got, castagnoli, zeroChecksum[:])
			got = crc32.Update(got, castagnoli, header[value+4:])
			if got != want {
				return malformed("v2: CRC32C 0x%08x, header sums to 0x%08x", want, got)
			}
		}
		off = value + valueLen
	}
	return nil
}
