package admin

import (
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

// TestStatusPagePolicy pins the status page's content security policy and
// what the page may contain under it. The policy lets inline script and
// style run ('unsafe-inline': the page is one file) and nothing else: no
// source from elsewhere, no eval, no plugin, image or font, fetches only
// back to the endpoint, no framing. Since inline script runs, the page
// must never turn data into markup: it writes text only.
func TestStatusPagePolicy(t *testing.T) {
	a := New(Options{})
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, "http://127.0.0.1/", nil)
	req.RemoteAddr = "127.0.0.1:40000"
	a.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /: %d %s", rec.Code, rec.Body)
	}
	h := rec.Header()
	if got := h.Get("X-Content-Type-Options"); got != "nosniff" {
		t.Errorf("X-Content-Type-Options %q, want nosniff", got)
	}
	if got := h.Get("Content-Type"); !strings.HasPrefix(got, "text/html") {
		t.Errorf("Content-Type %q, want text/html", got)
	}

	policy := map[string][]string{}
	for d := range strings.SplitSeq(h.Get("Content-Security-Policy"), ";") {
		f := strings.Fields(d)
		if len(f) == 0 {
			continue
		}
		if _, dup := policy[f[0]]; dup {
			t.Errorf("directive %s given twice: the browser uses the first only", f[0])
		}
		policy[f[0]] = f[1:]
	}
	exactly := map[string]string{
		"default-src":     "'none'",
		"connect-src":     "'self'",
		"base-uri":        "'none'",
		"form-action":     "'none'",
		"frame-ancestors": "'none'",
	}
	for d, want := range exactly {
		if got := strings.Join(policy[d], " "); got != want {
			t.Errorf("%s %q, want %q", d, got, want)
		}
	}
	inline := regexp.MustCompile(`^('unsafe-inline'|'sha(256|384|512)-[A-Za-z0-9+/=]+'|'nonce-[A-Za-z0-9+/=]+')$`)
	for _, d := range []string{"script-src", "style-src"} {
		if len(policy[d]) == 0 {
			t.Errorf("%s missing: it would fall back to default-src 'none' and the page would not run", d)
		}
		for _, src := range policy[d] {
			if !inline.MatchString(src) {
				t.Errorf("%s allows %s: only the page's inline code may run", d, src)
			}
		}
	}
	for d := range policy {
		if _, ok := exactly[d]; !ok && d != "script-src" && d != "style-src" {
			t.Errorf("directive %s %v: a new directive needs this test to say what it may allow", d, policy[d])
		}
	}

	page := rec.Body.String()
	script := regexp.MustCompile(`(?s)<script>.*?</script>`)
	markup := script.ReplaceAllString(page, "")
	for _, c := range []struct{ what, in, re string }{
		{"an external script or stylesheet", page, `(?i)<script[^>]*\ssrc\s*=|<link\b|@import|url\(`},
		{"an attribute that loads or runs something", markup, `(?i)<[^>]*\s(src|href|srcset|action|on[a-z]+|style)\s*=`},
		{"code that turns data into markup or code", strings.Join(script.FindAllString(page, -1), ""), `innerHTML|outerHTML|insertAdjacentHTML|document\.write|\beval\(|new Function|setTimeout\(\s*["'\x60]`},
	} {
		if m := regexp.MustCompile(c.re).FindString(c.in); m != "" {
			t.Errorf("the page has %s: %q", c.what, m)
		}
	}
	for _, u := range regexp.MustCompile(`(?i)\b[a-z][a-z0-9+.-]*://[^\s"'\x60<>)]*`).FindAllString(page, -1) {
		if u != "http://www.w3.org/2000/svg" { // a namespace name, never fetched
			t.Errorf("the page names %s: it may talk to its own endpoint only (relative paths)", u)
		}
	}
}
