package origin

import (
	"errors"
	"testing"
)

func TestAllows(t *testing.T) {
	a, err := Parse([]string{"https://app.example.com", "https://*.example.org", "http://localhost:3000", "http://[::1]:8080"})
	if err != nil {
		t.Fatal(err)
	}
	for origin, want := range map[string]bool{
		"https://app.example.com":      true,
		"HTTPS://APP.EXAMPLE.COM":      true,
		"https://app.example.com/":     true,
		"http://app.example.com":       false, // scheme differs
		"https://app.example.com:8443": false, // port differs
		"https://evil.com":             false,
		"https://app.example.com.evil": false,
		"https://a.example.org":        true,
		"https://a.b.example.org":      true,
		"https://example.org":          false, // the domain itself is not a subdomain
		"https://badexample.org":       false,
		"https://a.example.org:444":    false,
		"http://localhost:3000":        true,
		"http://localhost":             false,
		"http://[::1]:8080":            true,
		"null":                         false,
		"":                             false,
		"not an origin":                false,
		"https://user@app.example.com": false,
	} {
		if got := a.Allows(origin); got != want {
			t.Errorf("Allows(%q) = %v, want %v", origin, got, want)
		}
	}
	var none *Allowlist
	if !none.Allows("https://anything.example") || none.String() != "any" {
		t.Error("a nil allowlist must allow everything")
	}
}

func TestParseRefuses(t *testing.T) {
	for _, p := range []string{"null", "example.com", "https://example.com/path", "https://example.com:443", "http://example.com:80",
		"https://*.", "https://a.*.example.com", "https://*example.com", "https://example.com?q", "*"} {
		if _, err := Parse([]string{p}); !errors.Is(err, ErrPattern) {
			t.Errorf("Parse(%q) = %v, want ErrPattern", p, err)
		}
	}
	if a, err := Parse(nil); a != nil || err != nil {
		t.Errorf("no pattern: %v %v", a, err)
	}
}
