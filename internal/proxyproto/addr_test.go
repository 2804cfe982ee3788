package proxyproto

import (
	"net/netip"
	"strings"
	"testing"
)

// The v1 address parsers are written out rather than calling
// net/netip.ParseAddr, whose string argument escapes (an allocation per
// address). They must accept exactly what net/netip accepts: these tests
// and fuzz targets compare the two.

var addrSamples = []string{
	"0.0.0.0", "1.2.3.4", "255.255.255.255", "256.1.1.1", "01.2.3.4", "1.2.3.04", "1.2.3", "1.2.3.4.5",
	"1..2.3", ".1.2.3", "1.2.3.", "1.2.3.4 ", "1.2.3.-4", "1234.1.1.1", "",
	"::", "::1", "1::", "1::2", "2001:db8::1", "::ffff:1.2.3.4", "::1.2.3.4", "1:2:3:4:5:6:1.2.3.4",
	"1:2:3:4:5::1.2.3.4", "1:2:3:4:5:6:7:1.2.3.4", "1:2:3:4:5:1.2.3.4", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
	"FFFF::aBcD", "1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8:9", "1:2:3:4:5:6:7::", "::2:3:4:5:6:7:8", "1::2::3",
	":1", "1:", ":::", "1:::2", "12345::", "0000:0000::", "00000::", "g::", "fe80::1%eth0", "::ffff:01.2.3.4",
	"::ffff:1.2.3", "1:2:3:4:5:6:7:8::", "::1:2:3:4:5:6:7:8", "1:2:3:4:5:6:255.255.255.255", "::1.2.3.4:5",
}

func TestParseIPv4MatchesNetip(t *testing.T) {
	for _, s := range addrSamples {
		checkIPv4(t, s)
	}
}

func TestParseIPv6MatchesNetip(t *testing.T) {
	for _, s := range addrSamples {
		checkIPv6(t, s)
	}
}

func FuzzParseIPv4(f *testing.F) {
	for _, s := range addrSamples {
		f.Add(s)
	}
	f.Fuzz(checkIPv4)
}

func FuzzParseIPv6(f *testing.F) {
	for _, s := range addrSamples {
		f.Add(s)
	}
	f.Fuzz(checkIPv6)
}

// checkIPv4 compares parseIPv4 with net/netip on s, and checks that every
// prefix of an address it accepts is accepted as a partial one.
func checkIPv4(t *testing.T, s string) {
	want, err := netip.ParseAddr(s)
	wantOK := err == nil && want.Is4()
	got, ok := parseIPv4([]byte(s), false)
	if ok != wantOK || (ok && got != want) {
		t.Fatalf("parseIPv4(%q) = %v, %v; net/netip: %v, %v", s, got, ok, want, err)
	}
	if ok {
		for k := range len(s) {
			if _, ok := parseIPv4([]byte(s[:k]), true); !ok {
				t.Fatalf("parseIPv4(%q, partial) refused the start of %q", s[:k], s)
			}
		}
	}
}

// checkIPv6 compares parseIPv6 with net/netip on s (addresses with a
// zone aside: v1 has none), and checks that every prefix of an address
// it accepts passes v1FieldCanStart.
func checkIPv6(t *testing.T, s string) {
	if strings.Contains(s, "%") {
		if _, ok := parseIPv6([]byte(s)); ok {
			t.Fatalf("parseIPv6(%q) accepted a zone", s)
		}
		return
	}
	want, err := netip.ParseAddr(s)
	wantOK := err == nil && want.Is6()
	got, ok := parseIPv6([]byte(s))
	if ok != wantOK || (ok && got != want) {
		t.Fatalf("parseIPv6(%q) = %v, %v; net/netip: %v, %v", s, got, ok, want, err)
	}
	if ok {
		for k := range len(s) {
			if !v1FieldCanStart(sourceAddr, []byte(s[:k]), true) {
				t.Fatalf("v1FieldCanStart refused %q, the start of %q", s[:k], s)
			}
		}
	}
}

func TestParsePort(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    uint16
		ok      bool
		partial bool // a port can start with in
	}{
		{"0", 0, true, true},
		{"1", 1, true, true},
		{"443", 443, true, true},
		{"65535", 65535, true, true},
		{"65536", 0, false, false},
		{"99999", 0, false, false},
		{"100000", 0, false, false},
		{"6553", 6553, true, true},
		{"00", 0, false, false},
		{"01", 0, false, false},
		{"", 0, false, true},
		{"1a", 0, false, false},
		{" 1", 0, false, false},
	} {
		got, ok := parsePort([]byte(tc.in), false)
		if got != tc.want || ok != tc.ok {
			t.Errorf("parsePort(%q) = %d, %v; want %d, %v", tc.in, got, ok, tc.want, tc.ok)
		}
		if _, ok := parsePort([]byte(tc.in), true); ok != tc.partial {
			t.Errorf("parsePort(%q, partial) = %v; want %v", tc.in, ok, tc.partial)
		}
	}
}
