// Package origin is the Origin allowlist checked at the upgrade: which web
// pages may open a session (a browser always sends the page's origin; a
// page on another site must not ride its user's cookies into a session).
// It owns the patterns and their matching, nothing else; an Allowlist is
// immutable once built, so safe for concurrent use.
package origin

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// ErrPattern wraps every refusal of a pattern.
var ErrPattern = errors.New("origin: bad pattern")

// Allowlist is a set of allowed origins. A nil *Allowlist allows every
// origin (no check).
type Allowlist struct {
	exact    map[string]bool // "https://app.example.com", "http://localhost:3000"
	suffixes []wildcard      // "https://*.example.com"
	patterns []string        // as given, for String
}

// wildcard is "scheme://*.domain[:port]": any subdomain of domain, at any
// depth, not domain itself.
type wildcard struct{ scheme, suffix, port string }

// Parse builds an allowlist from patterns: an exact origin
// ("https://app.example.com", "http://127.0.0.1:8080") or a wildcard for
// the subdomains of a domain ("https://*.example.com"). Scheme and host
// are compared without case; a port, when the pattern has one, must be
// the same (an origin's default port is never written, so
// "https://example.com:443" is refused as a pattern). "null" and paths
// are refused. No pattern: nil (every origin allowed).
func Parse(patterns []string) (*Allowlist, error) {
	if len(patterns) == 0 {
		return nil, nil
	}
	a := &Allowlist{exact: make(map[string]bool), patterns: patterns}
	for _, p := range patterns {
		scheme, host, port, err := split(p)
		if err != nil {
			return nil, fmt.Errorf("%w: %q: %v", ErrPattern, p, err)
		}
		if rest, ok := strings.CutPrefix(host, "*."); ok {
			if rest == "" || strings.Contains(rest, "*") {
				return nil, fmt.Errorf("%w: %q: a wildcard is \"*.\" then a domain", ErrPattern, p)
			}
			a.suffixes = append(a.suffixes, wildcard{scheme: scheme, suffix: "." + rest, port: port})
			continue
		}
		if strings.Contains(host, "*") {
			return nil, fmt.Errorf("%w: %q: a wildcard is \"*.\" then a domain", ErrPattern, p)
		}
		a.exact[join(scheme, host, port)] = true
	}
	return a, nil
}

// split cuts an origin into lower-case scheme and host, and port ("" if
// none).
func split(o string) (scheme, host, port string, err error) {
	if strings.EqualFold(o, "null") {
		return "", "", "", errors.New(`"null" is the origin of sandboxed and file pages: it cannot be allowed`)
	}
	u, err := url.Parse(o)
	if err != nil || u.Scheme == "" || u.Host == "" || u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return "", "", "", errors.New("want scheme://host[:port], nothing more")
	}
	scheme, host, port = strings.ToLower(u.Scheme), strings.ToLower(u.Hostname()), u.Port()
	if (scheme == "https" && port == "443") || (scheme == "http" && port == "80") {
		return "", "", "", errors.New("an origin never names its scheme's default port")
	}
	if strings.Contains(u.Host, "[") { // IPv6: keep the brackets
		host = "[" + host + "]"
	}
	return scheme, host, port, nil
}

func join(scheme, host, port string) string {
	if port != "" {
		return scheme + "://" + host + ":" + port
	}
	return scheme + "://" + host
}

// Allows reports whether a page of origin (an Origin header's value) may
// open a session. "null" and anything that is not an origin never are.
func (a *Allowlist) Allows(origin string) bool {
	if a == nil {
		return true
	}
	scheme, host, port, err := split(origin)
	if err != nil {
		return false
	}
	if a.exact[join(scheme, host, port)] {
		return true
	}
	for _, w := range a.suffixes {
		if w.scheme == scheme && w.port == port && strings.HasSuffix(host, w.suffix) {
			return true
		}
	}
	return false
}

// String lists the patterns.
func (a *Allowlist) String() string {
	if a == nil {
		return "any"
	}
	return strings.Join(a.patterns, " ")
}
