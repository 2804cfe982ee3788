package proxyproto

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// Trusted is the set of peers allowed to send a PROXY header: the load
// balancers in front of the gateway. Whom to trust when none are
// configured (loopback, say) is the caller's choice. Read-only once built
// by ParseTrusted; safe for concurrent use.
type Trusted struct {
	prefixes []netip.Prefix // masked; IPv4 ones as IPv4, never v4-mapped
}

// ParseTrusted builds a Trusted from CIDR prefixes ("10.0.0.0/8",
// "2001:db8::/32") and single addresses ("192.0.2.7", a /32 or /128).
// Host bits after the prefix length are ignored, and a v4-mapped IPv6
// prefix of /96 or longer is taken as the IPv4 prefix it maps. An empty
// list gives a Trusted that contains nothing.
func ParseTrusted(cidrs []string) (*Trusted, error) {
	t := &Trusted{prefixes: make([]netip.Prefix, 0, len(cidrs))}
	for _, s := range cidrs {
		s = strings.TrimSpace(s)
		var p netip.Prefix
		var err error
		if strings.Contains(s, "/") {
			p, err = netip.ParsePrefix(s)
		} else {
			var a netip.Addr
			if a, err = netip.ParseAddr(s); err == nil && a.Zone() != "" {
				err = errors.New("an address with a zone")
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		if err != nil {
			return nil, fmt.Errorf("proxyproto: trusted proxy %q: %w", s, err)
		}
		p = p.Masked()
		if p.Addr().Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		t.prefixes = append(t.prefixes, p)
	}
	return t, nil
}

// Contains reports whether a is a trusted peer. a's zone is ignored, and
// a v4-mapped IPv6 address is matched as the IPv4 address it maps (a
// dual-stack listener sees IPv4 peers so). A nil Trusted contains nothing.
func (t *Trusted) Contains(a netip.Addr) bool {
	if t == nil {
		return false
	}
	a = a.Unmap().WithZone("")
	for _, p := range t.prefixes {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// String lists the prefixes, comma-separated, for logs.
func (t *Trusted) String() string {
	if t == nil {
		return ""
	}
	var b strings.Builder
	for i, p := range t.prefixes {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(p.String())
	}
	return b.String()
}
