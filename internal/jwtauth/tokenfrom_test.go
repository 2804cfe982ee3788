package jwtauth

import (
	"net/url"
	"strings"
	"testing"
)

func TestTokenFrom(t *testing.T) {
	for _, tc := range []struct {
		name, authorization, query string
		want                       string
		ok                         bool
	}{
		{"bearer", "Bearer abc.def.ghi", "", "abc.def.ghi", true},
		{"bearer lower case", "bearer abc", "", "abc", true},
		{"bearer upper case", "BEARER abc", "", "abc", true},
		{"bearer mixed case", "bEaReR abc", "", "abc", true},
		{"several spaces", "Bearer    abc", "", "abc", true},
		{"surrounding whitespace", " \tBearer abc \t", "", "abc", true},
		{"no space", "Bearerabc", "", "", false},
		{"tab for a space", "Bearer\tabc", "", "", false},
		{"scheme alone", "Bearer", "", "", false},
		{"scheme and spaces", "Bearer   ", "", "", false},
		{"other scheme", "Basic dXNlcjpwYXNz", "", "", false},
		{"scheme prefix", "Bearerish abc", "", "", false},
		{"empty header and query", "", "", "", false},
		{"query", "", "access_token=abc", "abc", true},
		{"query among others", "", "room=7&access_token=abc&x=1", "abc", true},
		{"query percent-encoded", "", "access_token=a%2Eb%2Ec", "a.b.c", true},
		{"query plus is space", "", "access_token=a+b", "a b", true},
		{"query name percent-encoded", "", "access%5Ftoken=abc", "abc", true},
		{"query name plus", "", "access+token=abc", "", false},
		{"query first wins", "", "access_token=one&access_token=two", "one", true},
		{"query first empty wins", "", "access_token=&access_token=two", "", false},
		{"query no value", "", "access_token", "", false},
		{"query bad escape skipped", "", "access_token=%zz&access_token=two", "two", true},
		{"query semicolon pair skipped", "", "access_token=one;x=1&access_token=two", "two", true},
		{"query semicolon only", "", "x=1;access_token=one", "", false},
		{"query name prefix", "", "access_token2=abc", "", false},
		{"query name case", "", "Access_Token=abc", "", false},
		{"query empty pairs", "", "&&access_token=abc&", "abc", true},
		{"bearer wins over query", "Bearer header", "access_token=query", "header", true},
		{"other scheme falls to query", "Basic x", "access_token=query", "query", true},
		{"empty bearer falls to query", "Bearer ", "access_token=query", "query", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := TokenFrom(tc.authorization, tc.query)
			if got != tc.want || ok != tc.ok {
				t.Errorf("TokenFrom(%q, %q) = %q, %v; want %q, %v", tc.authorization, tc.query, got, ok, tc.want, tc.ok)
			}
		})
	}
}

func TestTokenFromAllocatesNothing(t *testing.T) {
	for _, in := range [][2]string{
		{"Bearer eyJ.eyJ.sig", ""},
		{"", "room=1&access_token=eyJ.eyJ.sig&x=2"},
		{"Basic x", "a=1&b=2"},
	} {
		if n := testing.AllocsPerRun(100, func() { TokenFrom(in[0], in[1]) }); n != 0 {
			t.Errorf("TokenFrom(%q, %q): %v allocations", in[0], in[1], n)
		}
	}
}

// FuzzTokenFromQuery holds queryToken to its promise: what
// url.ParseQuery(q).Get("access_token") finds.
func FuzzTokenFromQuery(f *testing.F) {
	for _, seed := range []string{
		"access_token=abc", "a=1&access_token=x%2By", "access%5ftoken=1", "access_token=%zz&access_token=2",
		"access_token=1;2", "&&=&access_token", "access_token=+%20", "%61ccess_token=v", "access_token=%",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, q string) {
		if strings.Count(q, "&") >= 10000 {
			t.Skip("url.ParseQuery gives up on this many parameters; queryToken has no map to bound")
		}
		values, _ := url.ParseQuery(q)
		want := values.Get(QueryParam)
		got, ok := queryToken(q)
		if got != want || ok != (want != "") {
			t.Fatalf("queryToken(%q) = %q, %v; url.ParseQuery says %q", q, got, ok, want)
		}
	})
}

// StripToken drops every parameter TokenFrom could read the token from,
// however its name is spelled, and keeps the others in order.
func TestStripToken(t *testing.T) {
	for query, want := range map[string]string{
		"":                                   "",
		"lang=en":                            "lang=en",
		"access_token=abc":                   "",
		"lang=en&access_token=abc&q=1":       "lang=en&q=1",
		"acc%65ss_token=abc&lang=en":         "lang=en",
		"access%5Ftoken=abc":                 "",
		"x=%41&access_token=abc":             "x=%41",
		"not_access_token=1&access_tokenx=2": "not_access_token=1&access_tokenx=2",
		"x=1;access_token=abc&q=2":           "x=1&q=2", // a parser splitting on ';' would read it
		"access_token=abc;x=1":               "x=1",
	} {
		if got := StripToken(query); got != want {
			t.Errorf("StripToken(%q) = %q, want %q", query, got, want)
		}
		if tok, ok := TokenFrom("", StripToken(query)); ok {
			t.Errorf("%q: a token survives stripping: %q", query, tok)
		}
	}
}
