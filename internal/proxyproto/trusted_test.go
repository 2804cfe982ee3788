package proxyproto

import (
	"net/netip"
	"testing"
)

func TestTrusted(t *testing.T) {
	tr, err := ParseTrusted([]string{"10.0.0.0/8", " 192.0.2.7 ", "2001:db8::/32", "::1", "::ffff:172.16.0.0/108", "198.51.100.99/24"})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := tr.String(), "10.0.0.0/8,192.0.2.7/32,2001:db8::/32,::1/128,172.16.0.0/12,198.51.100.0/24"; got != want {
		t.Fatalf("String() = %q; want %q", got, want)
	}
	for _, tc := range []struct {
		addr string
		want bool
	}{
		{"10.1.2.3", true},
		{"::ffff:10.1.2.3", true}, // a dual-stack listener's IPv4 peer
		{"11.0.0.1", false},
		{"192.0.2.7", true},
		{"192.0.2.8", false},
		{"2001:db8:1::5", true},
		{"2001:db9::5", false},
		{"::1", true},
		{"127.0.0.1", false},
		{"172.31.255.255", true},
		{"172.32.0.0", false},
		{"198.51.100.1", true},
		{"fe80::1%eth0", false},
		{"2001:db8::1%eth0", true}, // the zone is ignored
	} {
		if got := tr.Contains(netip.MustParseAddr(tc.addr)); got != tc.want {
			t.Errorf("Contains(%s) = %v; want %v", tc.addr, got, tc.want)
		}
	}
	if tr.Contains(netip.Addr{}) {
		t.Error("Contains(invalid address)")
	}
}

func TestTrustedEmptyAndNil(t *testing.T) {
	tr, err := ParseTrusted(nil)
	if err != nil {
		t.Fatal(err)
	}
	var none *Trusted
	for _, a := range []string{"127.0.0.1", "::1"} {
		if tr.Contains(netip.MustParseAddr(a)) || none.Contains(netip.MustParseAddr(a)) {
			t.Errorf("an empty or nil Trusted contains %s", a)
		}
	}
	if none.String() != "" || tr.String() != "" {
		t.Error("String() of an empty Trusted is not empty")
	}
}

func TestParseTrustedErrors(t *testing.T) {
	for _, s := range []string{"", "10.0.0.0/33", "10.0.0/8", "example.com", "fe80::1%eth0", "fe80::%eth0/64", "::/129"} {
		if _, err := ParseTrusted([]string{"10.0.0.0/8", s}); err == nil {
			t.Errorf("ParseTrusted(%q) accepted it", s)
		}
	}
}
