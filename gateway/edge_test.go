package gateway_test

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"net"
	"net/http"
	"net/netip"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/wsgate/wsgate/internal/testutil"
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

// proxyDialer is a gorilla dialer whose connections start with header (a
// PROXY protocol header), as a load balancer's would.
func proxyDialer(header []byte) *websocket.Dialer {
	return &websocket.Dialer{HandshakeTimeout: 5 * time.Second,
		NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			var d net.Dialer
			c, err := d.DialContext(ctx, network, addr)
			if err == nil {
				_, err = c.Write(header)
			}
			return c, err
		}}
}

// proxyV2 is a PROXY v2 header for a TCP-over-IPv6 client src.
func proxyV2(src netip.AddrPort) []byte {
	h := append([]byte("\r\n\r\n\x00\r\nQUIT\n"), 0x21, 0x21, 0, 36)
	dst := netip.MustParseAddrPort("[2001:db8::ffff]:443")
	h = append(h, src.Addr().AsSlice()...)
	h = append(h, dst.Addr().AsSlice()...)
	return binary.BigEndian.AppendUint16(binary.BigEndian.AppendUint16(h, src.Port()), dst.Port())
}

// sessionClient opens a session with d, sends one message and returns the
// client address the backend's session_start named.
func sessionClient(t *testing.T, d *websocket.Dialer, url string, sb *scriptBackend) string {
	t.Helper()
	c, _, err := d.Dial(url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	roundTrip(t, c, websocket.TextMessage, []byte("who am i"))
	got := sb.received()
	var start struct{ Client string }
	if err := json.Unmarshal([]byte(got[len(got)-2]), &start); err != nil {
		t.Fatal(err)
	}
	return start.Client
}

func TestProxyProtocol(t *testing.T) {
	front := newPKI(t)
	sb := &scriptBackend{}
	g := startGateway(t, []server.Handler{sb}, append(front.listenerFlags(), "-loops", "1", "-pool-size", "1", "-session-start",
		"-proxy-protocol")...)
	v1 := []byte("PROXY TCP4 203.0.113.7 10.0.0.1 51000 443\r\n")
	if got := sessionClient(t, proxyDialer(v1), g.url("/"), sb); got != "203.0.113.7:51000" {
		t.Errorf("v1: the backend saw client %s", got)
	}
	if got := sessionClient(t, proxyDialer(proxyV2(netip.MustParseAddrPort("[2001:db8::7]:51001"))), g.url("/"), sb); got != "[2001:db8::7]:51001" {
		t.Errorf("v2: the backend saw client %s", got)
	}
	// Over TLS the header comes first, then the TLS handshake.
	wss := proxyDialer(v1)
	wss.TLSClientConfig = front.client()
	if got := sessionClient(t, wss, "wss://"+g.Server.TLSAddr()+"/", sb); got != "203.0.113.7:51000" {
		t.Errorf("v1 over TLS: the backend saw client %s", got)
	}
	// Without a header: 400 on the plain listener, closed on the TLS one.
	if got := upgradeStatus(t, g.url("/"), nil); got != 400 {
		t.Errorf("no header: %d, want 400", got)
	}
	d := websocket.Dialer{TLSClientConfig: front.client(), HandshakeTimeout: 5 * time.Second}
	if c, _, err := d.Dial("wss://"+g.Server.TLSAddr()+"/", nil); err == nil {
		c.Close()
		t.Error("TLS without a PROXY header: session opened")
	}
	if got := upgradeStatus(t, "ws://"+g.Server.Addr()+"/", http.Header{}); got != 400 {
		t.Errorf("no header, again: %d", got)
	}
	st := g.Server.Stats()
	testutil.CheckFor(t, 5*time.Second, counter("PROXY headers missing", func() int64 { return st.ProxyFailures(server.ProxyMissing) }, 3))
}

func TestProxyProtocolFromUntrustedPeer(t *testing.T) {
	g := startGateway(t, []server.Handler{nil}, "-proxy-protocol", "-proxy-protocol-from", "10.0.0.0/8")
	v1 := []byte("PROXY TCP4 203.0.113.7 10.0.0.1 51000 443\r\n")
	_, resp, err := proxyDialer(v1).Dial(g.url("/"), nil)
	if err == nil || resp == nil || resp.StatusCode != 400 {
		t.Fatalf("a header from an untrusted peer: %v %v", resp, err)
	}
	if n := g.Server.Stats().ProxyFailures(server.ProxyUntrusted); n != 1 {
		t.Fatalf("%d untrusted refusals counted", n)
	}
}

func TestPerIPLimits(t *testing.T) {
	g := startGateway(t, []server.Handler{nil}, "-max-conns-per-ip", "2", "-proxy-protocol")
	alice := proxyDialer([]byte("PROXY TCP4 198.51.100.1 10.0.0.1 40000 80\r\n"))
	bob := proxyDialer([]byte("PROXY TCP4 198.51.100.2 10.0.0.1 40000 80\r\n"))
	var open []*websocket.Conn
	defer func() {
		for _, c := range open {
			c.Close()
		}
	}()
	for range 2 {
		c, _, err := alice.Dial(g.url("/"), nil)
		if err != nil {
			t.Fatal(err)
		}
		open = append(open, c)
	}
	_, resp, err := alice.Dial(g.url("/"), nil)
	if err == nil || resp == nil || resp.StatusCode != 429 || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("third connection from one address: %v %v", resp, err)
	}
	c, _, err := bob.Dial(g.url("/"), nil) // another address has its own allowance
	if err != nil {
		t.Fatalf("another address: %v", err)
	}
	open = append(open, c)
	open[0].Close()
	open = open[1:]
	testutil.CheckFor(t, 5*time.Second, func() error {
		c, _, err := alice.Dial(g.url("/"), nil)
		if err != nil {
			return err
		}
		open = append(open, c)
		return nil
	})
	if ip := g.Server.IPLimits(); ip.RefusedConns != 1 {
		t.Errorf("refusals: %+v", ip)
	}
	// Headers that name no client (the proxy's own health checks) are not
	// counted against the proxy's address: more of them than the limit
	// all pass.
	local := proxyDialer([]byte("PROXY UNKNOWN\r\n"))
	for i := range 3 {
		c, _, err := local.Dial(g.url("/"), nil)
		if err != nil {
			t.Fatalf("header without a client, #%d: %v", i+1, err)
		}
		open = append(open, c)
	}
}

func TestPerIPSessionRate(t *testing.T) {
	g := startGateway(t, []server.Handler{nil}, "-session-rate-per-ip", "0.5", "-session-burst-per-ip", "2")
	for i, want := range []int{101, 101, 429} {
		if got := upgradeStatus(t, g.url("/"), nil); got != want {
			t.Fatalf("session %d: %d, want %d", i, got, want)
		}
	}
	_, resp, _ := websocket.DefaultDialer.Dial(g.url("/"), nil)
	if resp == nil || resp.Header.Get("Retry-After") != "2" {
		t.Fatalf("Retry-After %v, want 2 (the next token at 0.5/s)", resp)
	}
	if n := g.Server.Stats().Refused(429); n != 2 {
		t.Fatalf("%d refusals counted as 429", n)
	}
}
