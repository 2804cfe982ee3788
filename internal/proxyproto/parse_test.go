package proxyproto

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"net/netip"
	"strings"
	"testing"
)

// v2Header builds a v2 header: the signature, versionCommand and
// familyTransport bytes, the length of body, then body.
func v2Header(versionCommand, familyTransport byte, body ...[]byte) []byte {
	b := append([]byte(v2Signature), versionCommand, familyTransport, 0, 0)
	for _, part := range body {
		b = append(b, part...)
	}
	binary.BigEndian.PutUint16(b[14:], uint16(len(b)-v2FixedLen))
	return b
}

// inet4Block is the address block of TCP over IPv4.
func inet4Block(src, dst string, sport, dport uint16) []byte {
	s, d := netip.MustParseAddr(src).As4(), netip.MustParseAddr(dst).As4()
	b := append(s[:], d[:]...)
	return binary.BigEndian.AppendUint16(binary.BigEndian.AppendUint16(b, sport), dport)
}

// inet6Block is the address block of TCP over IPv6.
func inet6Block(src, dst string, sport, dport uint16) []byte {
	s, d := netip.MustParseAddr(src).As16(), netip.MustParseAddr(dst).As16()
	b := append(s[:], d[:]...)
	return binary.BigEndian.AppendUint16(binary.BigEndian.AppendUint16(b, sport), dport)
}

func tlv(typ byte, value []byte) []byte {
	return append(binary.BigEndian.AppendUint16([]byte{typ}, uint16(len(value))), value...)
}

// withCRC32C appends a CRC32C TLV to header h and fills in its checksum.
func withCRC32C(h []byte) []byte {
	h = append(h, tlv(tlvCRC32C, make([]byte, 4))...)
	binary.BigEndian.PutUint16(h[14:], uint16(len(h)-v2FixedLen))
	binary.BigEndian.PutUint32(h[len(h)-4:], crc32.Checksum(h, castagnoli))
	return h
}

func addrPort(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

// validHeaders are whole headers of every form, with what Parse returns.
var validHeaders = []struct {
	name  string
	input []byte
	want  Header
}{
	{
		name:  "v1 TCP4, the spec's example",
		input: []byte("PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n"),
		want:  Header{Version: 1, Command: CommandProxy, Source: addrPort("192.168.0.1:56324"), Destination: addrPort("192.168.0.11:443")},
	},
	{
		name:  "v1 TCP4 longest",
		input: []byte("PROXY TCP4 255.255.255.255 255.255.255.255 65535 65535\r\n"),
		want:  Header{Version: 1, Command: CommandProxy, Source: addrPort("255.255.255.255:65535"), Destination: addrPort("255.255.255.255:65535")},
	},
	{
		name:  "v1 TCP4 zeros",
		input: []byte("PROXY TCP4 0.0.0.0 10.0.0.1 0 0\r\n"),
		want:  Header{Version: 1, Command: CommandProxy, Source: addrPort("0.0.0.0:0"), Destination: addrPort("10.0.0.1:0")},
	},
	{
		name:  "v1 TCP6",
		input: []byte("PROXY TCP6 2001:db8::1 2001:db8::2 56324 443\r\n"),
		want:  Header{Version: 1, Command: CommandProxy, Source: addrPort("[2001:db8::1]:56324"), Destination: addrPort("[2001:db8::2]:443")},
	},
	{
		name:  "v1 TCP6 longest, 104 bytes",
		input: []byte("PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff FFFF:FFFF:FFFF:FFFF:FFFF:FFFF:FFFF:FFFF 65535 65535\r\n"),
		want: Header{Version: 1, Command: CommandProxy,
			Source:      addrPort("[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535"),
			Destination: addrPort("[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535")},
	},
	{
		name:  "v1 TCP6 v4-mapped and embedded IPv4",
		input: []byte("PROXY TCP6 ::ffff:192.0.2.1 1:2:3:4:5:6:7.8.9.10 1 2\r\n"),
		want:  Header{Version: 1, Command: CommandProxy, Source: addrPort("[::ffff:192.0.2.1]:1"), Destination: addrPort("[1:2:3:4:5:6:708:90a]:2")},
	},
	{
		name:  "v1 TCP6 unspecified and loopback",
		input: []byte("PROXY TCP6 :: ::1 1 2\r\n"),
		want:  Header{Version: 1, Command: CommandProxy, Source: addrPort("[::]:1"), Destination: addrPort("[::1]:2")},
	},
	{
		name:  "v1 UNKNOWN short",
		input: []byte("PROXY UNKNOWN\r\n"),
		want:  Header{Version: 1, Command: CommandLocal},
	},
	{
		name:  "v1 UNKNOWN worst case, 107 bytes",
		input: []byte("PROXY UNKNOWN ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n"),
		want:  Header{Version: 1, Command: CommandLocal},
	},
	{
		name:  "v1 UNKNOWN, rest ignored",
		input: []byte("PROXY UNKNOWN  anything\r at  all \r\n"),
		want:  Header{Version: 1, Command: CommandLocal},
	},
	{
		name:  "v2 PROXY TCP4",
		input: v2Header(0x21, tcp4, inet4Block("192.0.2.1", "198.51.100.2", 56324, 443)),
		want:  Header{Version: 2, Command: CommandProxy, Source: addrPort("192.0.2.1:56324"), Destination: addrPort("198.51.100.2:443")},
	},
	{
		name:  "v2 PROXY TCP6",
		input: v2Header(0x21, tcp6, inet6Block("2001:db8::1", "2001:db8::2", 56324, 443)),
		want:  Header{Version: 2, Command: CommandProxy, Source: addrPort("[2001:db8::1]:56324"), Destination: addrPort("[2001:db8::2]:443")},
	},
	{
		name: "v2 PROXY TCP4 with TLVs",
		input: v2Header(0x21, tcp4, inet4Block("192.0.2.1", "198.51.100.2", 1, 2),
			tlv(0x01, []byte("http/1.1")), tlv(0x02, []byte("example.com")), tlv(0x04, make([]byte, 7)), tlv(0xe0, nil)),
		want: Header{Version: 2, Command: CommandProxy, Source: addrPort("192.0.2.1:1"), Destination: addrPort("198.51.100.2:2")},
	},
	{
		name:  "v2 PROXY TCP6 with a CRC32C",
		input: withCRC32C(v2Header(0x21, tcp6, inet6Block("::ffff:192.0.2.1", "2001:db8::2", 1, 2), tlv(0x05, []byte("id")))),
		want:  Header{Version: 2, Command: CommandProxy, Source: addrPort("[::ffff:192.0.2.1]:1"), Destination: addrPort("[2001:db8::2]:2")},
	},
	{
		name:  "v2 PROXY TCP4 with TLVs up to the bound",
		input: v2Header(0x21, tcp4, inet4Block("192.0.2.1", "198.51.100.2", 1, 2), tlv(0x04, make([]byte, MaxV2Body-12-3))),
		want:  Header{Version: 2, Command: CommandProxy, Source: addrPort("192.0.2.1:1"), Destination: addrPort("198.51.100.2:2")},
	},
	{
		name:  "v2 LOCAL",
		input: v2Header(0x20, unspecified),
		want:  Header{Version: 2, Command: CommandLocal},
	},
	{
		name:  "v2 LOCAL, its block discarded unchecked",
		input: v2Header(0x20, 0xff, []byte{1, 2, 3}),
		want:  Header{Version: 2, Command: CommandLocal},
	},
	{
		name:  "v2 PROXY AF_UNSPEC, its block ignored",
		input: v2Header(0x21, unspecified, []byte{1, 2, 3}),
		want:  Header{Version: 2, Command: CommandProxy},
	},
	{
		name:  "v2 PROXY UDP4: no usable address",
		input: v2Header(0x21, udp4, inet4Block("192.0.2.1", "198.51.100.2", 1, 2)),
		want:  Header{Version: 2, Command: CommandProxy},
	},
	{
		name:  "v2 PROXY UDP6: no usable address",
		input: v2Header(0x21, udp6, inet6Block("2001:db8::1", "2001:db8::2", 1, 2)),
		want:  Header{Version: 2, Command: CommandProxy},
	},
	{
		name:  "v2 PROXY AF_UNIX: no usable address",
		input: v2Header(0x21, unixStream, make([]byte, 216), tlv(0x04, nil)),
		want:  Header{Version: 2, Command: CommandProxy},
	},
}

// validHeader is the input of the valid header named name.
func validHeader(name string) []byte {
	for _, tc := range validHeaders {
		if tc.name == name {
			return tc.input
		}
	}
	panic("no valid header named " + name)
}

// trailer is what a client sends after the header.
var trailer = []byte("GET /chat HTTP/1.1\r\nHost: example.com\r\n\r\n")

func TestParseValid(t *testing.T) {
	for _, tc := range validHeaders {
		t.Run(tc.name, func(t *testing.T) {
			for _, input := range [][]byte{tc.input, append(bytes.Clone(tc.input), trailer...)} {
				h, n, err := Parse(input)
				if err != nil {
					t.Fatalf("Parse = %v", err)
				}
				if h != tc.want || n != len(tc.input) {
					t.Fatalf("Parse = %+v, %d; want %+v, %d", h, n, tc.want, len(tc.input))
				}
			}
			wantLocal := tc.want.Command == CommandLocal || !tc.want.Source.IsValid()
			if h, _, _ := Parse(tc.input); h.Local() != wantLocal {
				t.Fatalf("Local() = %v", h.Local())
			}
		})
	}
}

// TestParseSplit feeds every valid header cut at every byte: every strict
// prefix needs more, and the whole gives the same as all at once.
func TestParseSplit(t *testing.T) {
	for _, tc := range validHeaders {
		t.Run(tc.name, func(t *testing.T) {
			for k := range len(tc.input) {
				if _, n, err := Parse(tc.input[:k]); !errors.Is(err, ErrNeedMore) || n != 0 {
					t.Fatalf("Parse(first %d of %d bytes) = %d, %v; want ErrNeedMore", k, len(tc.input), n, err)
				}
			}
		})
	}
}

var malformedHeaders = []struct {
	name  string
	input []byte
}{
	{"v1 LF without CR", []byte("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n")},
	{"v1 bare LF in UNKNOWN", []byte("PROXY UNKNOWN\n")},
	{"v1 CR inside a field", []byte("PROXY TCP4 1.2.3.4\r 5.6.7.8 1 2\r\n")},
	{"v1 IPv4 part over 255", []byte("PROXY TCP4 1.2.3.256 5.6.7.8 1 2\r\n")},
	{"v1 IPv4 with a leading zero", []byte("PROXY TCP4 01.2.3.4 5.6.7.8 1 2\r\n")},
	{"v1 IPv4 with three parts", []byte("PROXY TCP4 1.2.3 5.6.7.8 1 2\r\n")},
	{"v1 IPv4 with five parts", []byte("PROXY TCP4 1.2.3.4.5 5.6.7.8 1 2\r\n")},
	{"v1 IPv4 with an empty part", []byte("PROXY TCP4 1..3.4 5.6.7.8 1 2\r\n")},
	{"v1 IPv4 ending in a dot", []byte("PROXY TCP4 1.2.3.4 5.6.7. 1 2\r\n")},
	{"v1 port 65536", []byte("PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n")},
	{"v1 port of six digits", []byte("PROXY TCP4 1.2.3.4 5.6.7.8 1 100000\r\n")},
	{"v1 port with a leading zero", []byte("PROXY TCP4 1.2.3.4 5.6.7.8 0443 2\r\n")},
	{"v1 port 00", []byte("PROXY TCP4 1.2.3.4 5.6.7.8 1 00\r\n")},
	{"v1 negative port", []byte("PROXY TCP4 1.2.3.4 5.6.7.8 -1 2\r\n")},
	{"v1 port with a sign", []byte("PROXY TCP4 1.2.3.4 5.6.7.8 +1 2\r\n")},
	{"v1 two spaces", []byte("PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n")},
	{"v1 trailing space", []byte("PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n")},
	{"v1 extra field", []byte("PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n")},
	{"v1 missing port", []byte("PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n")},
	{"v1 TCP4 without addresses", []byte("PROXY TCP4\r\n")},
	{"v1 TCP4 with a space and nothing", []byte("PROXY TCP4 \r\n")},
	{"v1 empty protocol", []byte("PROXY \r\n")},
	{"v1 lowercase protocol", []byte("PROXY tcp4 1.2.3.4 5.6.7.8 1 2\r\n")},
	{"v1 protocol UDP4", []byte("PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n")},
	{"v1 protocol UNKNOWNX", []byte("PROXY UNKNOWNX\r\n")},
	{"v1 TCP4 with IPv6", []byte("PROXY TCP4 ::1 5.6.7.8 1 2\r\n")},
	{"v1 TCP6 with IPv4", []byte("PROXY TCP6 2001:db8::1 5.6.7.8 1 2\r\n")},
	{"v1 TCP6 with a zone", []byte("PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n")},
	{"v1 TCP6 with two ellipses", []byte("PROXY TCP6 1::2::3 ::1 1 2\r\n")},
	{"v1 TCP6 with nine groups", []byte("PROXY TCP6 1:2:3:4:5:6:7:8:9 ::1 1 2\r\n")},
	{"v1 TCP6 with a group of five digits", []byte("PROXY TCP6 12345::1 ::1 1 2\r\n")},
	{"v1 TCP6 ellipsis standing for nothing", []byte("PROXY TCP6 1:2:3:4::5:6:7:8 ::1 1 2\r\n")},
	{"v1 TCP6 embedded IPv4 too early", []byte("PROXY TCP6 1:2:3:4:5:1.2.3.4 ::1 1 2\r\n")},
	{"v1 no CRLF within 107 bytes", []byte("PROXY UNKNOWN " + strings.Repeat("x", MaxV1Len-14))},
	{"v1 CRLF at byte 108", []byte("PROXY UNKNOWN " + strings.Repeat("x", MaxV1Len-15) + "\r\n")},
	{"v2 version 1", v2Header(0x11, tcp4, inet4Block("1.2.3.4", "5.6.7.8", 1, 2))},
	{"v2 version 3", v2Header(0x31, tcp4, inet4Block("1.2.3.4", "5.6.7.8", 1, 2))},
	{"v2 command 2", v2Header(0x22, tcp4, inet4Block("1.2.3.4", "5.6.7.8", 1, 2))},
	{"v2 command 15", v2Header(0x2f, unspecified)},
	{"v2 family 4", v2Header(0x21, 0x41, inet4Block("1.2.3.4", "5.6.7.8", 1, 2))},
	{"v2 transport 3", v2Header(0x21, 0x13, inet4Block("1.2.3.4", "5.6.7.8", 1, 2))},
	{"v2 AF_INET, transport UNSPEC", v2Header(0x21, 0x10, inet4Block("1.2.3.4", "5.6.7.8", 1, 2))},
	{"v2 AF_UNSPEC, transport STREAM", v2Header(0x21, 0x01)},
	{"v2 TCP4 one byte short", v2Header(0x21, tcp4, inet4Block("1.2.3.4", "5.6.7.8", 1, 2)[:11])},
	{"v2 TCP6 with an IPv4 block", v2Header(0x21, tcp6, inet4Block("1.2.3.4", "5.6.7.8", 1, 2))},
	{"v2 TCP6 one byte short", v2Header(0x21, tcp6, inet6Block("::1", "::2", 1, 2)[:35])},
	{"v2 AF_UNIX too short", v2Header(0x21, unixStream, make([]byte, 215))},
	{"v2 length past the bound", v2Header(0x21, tcp4, inet4Block("1.2.3.4", "5.6.7.8", 1, 2), make([]byte, MaxV2Body-11))},
	{"v2 LOCAL length past the bound", v2Header(0x20, unspecified, make([]byte, MaxV2Body+1))},
	{"v2 TLV overruns", v2Header(0x21, tcp4, inet4Block("1.2.3.4", "5.6.7.8", 1, 2), tlv(0x04, []byte{1, 2, 3})[:5])},
	{"v2 bytes after the last TLV", v2Header(0x21, tcp4, inet4Block("1.2.3.4", "5.6.7.8", 1, 2), []byte{0x04, 0})},
	{"v2 bad CRC32C", func() []byte {
		h := withCRC32C(v2Header(0x21, tcp4, inet4Block("1.2.3.4", "5.6.7.8", 1, 2)))
		h[len(h)-1] ^= 1
		return h
	}()},
	{"v2 CRC32C of 3 bytes", v2Header(0x21, tcp4, inet4Block("1.2.3.4", "5.6.7.8", 1, 2), tlv(tlvCRC32C, []byte{1, 2, 3}))},
}

// TestParseMalformed checks each malformed header whole, then cut at
// every byte: a prefix needs more or is already malformed, and once
// malformed, stays so.
func TestParseMalformed(t *testing.T) {
	for _, tc := range malformedHeaders {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := Parse(tc.input)
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("Parse = %v; want ErrMalformed", err)
			}
			t.Logf("%v", err)
			seen := false
			for k := range len(tc.input) {
				_, n, err := Parse(tc.input[:k])
				switch {
				case errors.Is(err, ErrMalformed):
					seen = true
				case errors.Is(err, ErrNeedMore) && !seen && n == 0:
				default:
					t.Fatalf("Parse(first %d bytes) = %d, %v (malformed before: %v)", k, n, err, seen)
				}
			}
		})
	}
}

// TestParseMalformedEarly pins that a broken field is refused as soon as
// its bytes show it, without waiting for the rest of the header.
func TestParseMalformedEarly(t *testing.T) {
	for _, input := range [][]byte{
		[]byte("PROXY TCP5"),
		[]byte("PROXY UNKNOWNX"),
		[]byte("PROXY TCP4 1.2.3.4 5.6.7.8 65536"),
		[]byte("PROXY TCP4 1.2.3.4 5.6.7.8 01"),
		[]byte("PROXY TCP4 1.2.3.4 5.6.7.8 1 2 "),
		[]byte("PROXY TCP4 1.2.3.256"),
		[]byte("PROXY TCP4 1.2.3.4  "),
		[]byte("PROXY TCP4 ::1"),
		[]byte("PROXY TCP6 fe80::1%"),
		[]byte("PROXY TCP4 1.2.3.4\r "),
		[]byte("PROXY TCP4 1.2.3.4 5.6.7.8 1\r"),
		[]byte(v2Signature + "\x11"),
		[]byte(v2Signature + "\x22"),
		[]byte(v2Signature + "\x21\x13"),
		[]byte(v2Signature + "\x21\x11\x00\x0b"),
		[]byte(v2Signature + "\x21\x11\x10\x01"),
	} {
		if _, _, err := Parse(input); !errors.Is(err, ErrMalformed) {
			t.Errorf("Parse(%q) = %v; want ErrMalformed", input, err)
		}
	}
}

// TestParseNotProxy pins that what a client sends first is refused at the
// first byte that no header has there.
func TestParseNotProxy(t *testing.T) {
	for _, tc := range []struct {
		name    string
		input   []byte
		decided int // bytes Parse needs to say ErrNotProxy
	}{
		{"HTTP GET", []byte("GET / HTTP/1.1\r\n"), 1},
		{"HTTP POST", []byte("POST / HTTP/1.1\r\n"), 2},
		{"HTTP PUT", []byte("PUT / HTTP/1.1\r\n"), 2},
		{"HTTP/2 preface", []byte("PRI * HTTP/2.0\r\n"), 3},
		{"TLS ClientHello", []byte{0x16, 0x03, 0x01, 0x02, 0x00, 0x01}, 1},
		{"lowercase proxy", []byte("proxy TCP4"), 1},
		{"PROXY and a tab", []byte("PROXY\tTCP4"), 6},
		{"PROXY and CRLF", []byte("PROXY\r\n"), 6},
		{"CRLF then a request", []byte("\r\nGET / HTTP/1.1\r\n"), 3},
		{"v2 signature broken at its end", []byte("\r\n\r\n\x00\r\nQUIT\r"), 12},
		{"NUL", []byte{0}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for k := range tc.decided {
				if _, _, err := Parse(tc.input[:k]); !errors.Is(err, ErrNeedMore) {
					t.Fatalf("Parse(first %d bytes) = %v; want ErrNeedMore", k, err)
				}
			}
			for k := tc.decided; k <= len(tc.input); k++ {
				if _, _, err := Parse(tc.input[:k]); err != ErrNotProxy {
					t.Fatalf("Parse(first %d bytes) = %v; want ErrNotProxy", k, err)
				}
			}
		})
	}
}

// TestParseNeverNeedsMoreThanMaxLen pins the bound a caller sizes its
// buffer by: at MaxV1Len bytes a v1 line is decided, at MaxLen anything.
func TestParseNeverNeedsMoreThanMaxLen(t *testing.T) {
	long := []byte("PROXY UNKNOWN " + strings.Repeat("x", 200)) // valid so far: only the length bound decides
	if _, _, err := Parse(long[:MaxV1Len]); errors.Is(err, ErrNeedMore) {
		t.Fatalf("v1 at %d bytes: %v", MaxV1Len, err)
	}
	almost := []byte("PROXY UNKNOWN " + strings.Repeat("x", MaxV1Len-16) + "\r")
	if _, _, err := Parse(almost); !errors.Is(err, ErrNeedMore) || len(almost) != MaxV1Len-1 {
		t.Fatalf("v1 at %d bytes ending in CR: %v", len(almost), err)
	}
	max := v2Header(0x20, unspecified, make([]byte, MaxV2Body))
	if len(max) != MaxLen {
		t.Fatalf("longest v2 header is %d bytes", len(max))
	}
	if _, n, err := Parse(max); err != nil || n != MaxLen {
		t.Fatalf("longest v2 header: %d, %v", n, err)
	}
	if _, _, err := Parse(max[:MaxLen-1]); !errors.Is(err, ErrNeedMore) {
		t.Fatalf("longest v2 header but one byte: %v", err)
	}
}

func TestCommandString(t *testing.T) {
	if CommandLocal.String() != "LOCAL" || CommandProxy.String() != "PROXY" || Command(7).String() != "Command(7)" {
		t.Fatal(CommandLocal, CommandProxy, Command(7))
	}
}
