package gateway_test

import (
	"net/http"
	"testing"

	"github.com/gorilla/websocket"

	"github.com/wsgate/wsgate/server"
)

// Edge checks at the upgrade, with real clients.

// upgradeStatus dials url with header and returns the HTTP status of the
// answer (101 when the session opened; it is closed at once).
func upgradeStatus(t *testing.T, url string, header http.Header) int {
	t.Helper()
	c, resp, err := websocket.DefaultDialer.Dial(url, header)
	if err == nil {
		c.Close()
		return http.StatusSwitchingProtocols
	}
	if resp == nil {
		t.Fatalf("%s: %v", url, err)
	}
	return resp.StatusCode
}

func TestOriginAllowlist(t *testing.T) {
	g := startGateway(t, []server.Handler{nil}, "-allow-origin", "https://app.example.com", "-allow-origin", "https://*.example.org")
	for origin, want := range map[string]int{
		"https://app.example.com":  101,
		"https://a.b.example.org":  101,
		"":                         101, // not a browser
		"https://evil.example.com": 403,
		"https://example.org":      403,
		"http://app.example.com":   403,
		"null":                     403,
	} {
		h := http.Header{}
		if origin != "" {
			h.Set("Origin", origin)
		}
		if got := upgradeStatus(t, g.url("/"), h); got != want {
			t.Errorf("Origin %q: %d, want %d", origin, got, want)
		}
	}
	if n := g.Server.Stats().Refused(403); n != 4 {
		t.Errorf("%d refusals counted as 403, want 4", n)
	}
}

func TestOriginAllowlistPerRoute(t *testing.T) {
	b := startBackend(t, nil, "")
	path := writeConfig(t, `default_group: main
allow_origins: ["https://app.example.com"]
groups:
  - name: main
    backends: [{url: "`+backendURL(b.Addr())+`", pool_target: 1}]
routes:
  - {path: /embed/, group: main, allow_origins: ["https://partner.example.net"]}
`)
	g := startGatewayArgs(t, "-config", path)
	for _, tc := range []struct {
		path, origin string
		want         int
	}{
		{"/", "https://app.example.com", 101},
		{"/", "https://partner.example.net", 403},
		{"/embed/x", "https://partner.example.net", 101},
		{"/embed/x", "https://app.example.com", 403}, // the route's list replaces the top-level one
	} {
		if got := upgradeStatus(t, g.url(tc.path), http.Header{"Origin": {tc.origin}}); got != tc.want {
			t.Errorf("%s from %s: %d, want %d", tc.path, tc.origin, got, tc.want)
		}
	}
}
