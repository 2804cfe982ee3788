package admin

import (
	_ "embed"
	"net/http"
)

// statusHTML is the live status page: one self-contained file, inline CSS
// and JS, no external assets. Its script fetches /pools and /stats every
// second.
//
//go:embed status.html
var statusHTML []byte

// statusPage serves the status page. The content security policy allows
// nothing from elsewhere: the page can only talk back to this endpoint.
func (a *Admin) statusPage(w http.ResponseWriter, _ *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	_, _ = w.Write(statusHTML)
}
